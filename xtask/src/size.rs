//! The size report: one row per built binary, with its budget, as a markdown table.

use std::fmt::Write as _;

/// The size of one built binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SizeRow {
    /// Target triple.
    pub(crate) triple: String,
    /// Size on disk, stripped.
    pub(crate) bytes: u64,
    /// The binary must stay strictly under this, if set.
    pub(crate) budget_bytes: Option<u64>,
}

impl SizeRow {
    /// Whether the binary is at or over its budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.budget_bytes.is_some_and(|budget| self.bytes >= budget)
    }
}

/// Bytes as MiB with two decimals.
pub(crate) fn mib(bytes: u64) -> String {
    // Exact for any realistic binary size (f64 holds integers up to 2^53 exactly).
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / 1_048_576.0;
    format!("{value:.2}")
}

/// The markdown size table.
pub(crate) fn table(rows: &[SizeRow]) -> String {
    let mut out =
        String::from("| target | bytes | MiB | budget | status |\n|---|---:|---:|---:|---|\n");
    for row in rows {
        let (budget, status) = match row.budget_bytes {
            Some(b) if row.over_budget() => (format!("{b} ({} MiB)", mib(b)), "OVER BUDGET"),
            Some(b) => (format!("{b} ({} MiB)", mib(b)), "ok"),
            None => ("-".to_owned(), "ok"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {budget} | {status} |",
            row.triple,
            row.bytes,
            mib(row.bytes)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: u64, budget: Option<u64>) -> SizeRow {
        SizeRow {
            triple: "arm-unknown-linux-musleabihf".into(),
            bytes,
            budget_bytes: budget,
        }
    }

    #[test]
    fn budget_is_strictly_under() {
        assert!(!row(2_621_439, Some(2_621_440)).over_budget());
        assert!(row(2_621_440, Some(2_621_440)).over_budget());
        assert!(row(9_000_000, Some(2_621_440)).over_budget());
        assert!(!row(u64::MAX, None).over_budget());
    }

    #[test]
    fn mib_has_two_decimals() {
        assert_eq!(mib(2_621_440), "2.50");
        assert_eq!(mib(1_048_575), "1.00");
        assert_eq!(mib(0), "0.00");
    }

    #[test]
    fn table_marks_rows_over_budget() {
        let t = table(&[
            row(1_000_000, Some(2_621_440)),
            row(3_000_000, Some(2_621_440)),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains("| 1000000 | 0.95 |") && lines[2].ends_with("| ok |"));
        assert!(lines[3].ends_with("| OVER BUDGET |"), "{}", lines[3]);
    }
}
