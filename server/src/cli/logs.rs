//! `flotta-server logs <device> [--workload W] [--since DURATION]`: the
//! `--since` durations (`90s`, `15m`, `2h`, `7d`) and the printed lines
//! (`TIME SOURCE LEVEL MESSAGE`, oldest first).

use serde_json::Value;

/// Milliseconds in `text`: a positive whole number with a unit `s`, `m`,
/// `h` or `d`.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration such as 90s, 15m, 2h or 7d");
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: u64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let per = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(per).filter(|ms| *ms > 0).ok_or_else(bad)
}

/// One line per log line: time, source, level, message.
pub fn format_logs(items: &[Value]) -> String {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let width = items
        .iter()
        .map(|i| text(i, "source").len())
        .max()
        .unwrap_or(0);
    items
        .iter()
        .map(|i| {
            format!(
                "{} {:<width$} {:<5} {}\n",
                text(i, "time"),
                text(i, "source"),
                text(i, "level"),
                text(i, "message")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_with_units_and_clear_refusals() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        for bad in [
            "",
            "h",
            "10",
            "-1h",
            "0s",
            "1w",
            "1.5h",
            "99999999999999999d",
        ] {
            let e = parse_duration_ms(bad).unwrap_err();
            assert!(e.contains("not a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn lines_are_aligned_by_source() {
        let items = [
            json!({"time": "2026-12-02T10:00:00Z", "source": "web", "level": "info", "message": "up"}),
            json!({"time": "2026-12-02T10:00:01Z", "source": "agent", "level": "warn", "message": "x y"}),
        ];
        assert_eq!(
            format_logs(&items),
            "2026-12-02T10:00:00Z web   info  up\n2026-12-02T10:00:01Z agent warn  x y\n"
        );
    }
}
