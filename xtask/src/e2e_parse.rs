//! Reading what the programs print, for `armv6-e2e`: the agent's window line, the server's
//! `get` table and YAML, an HTTP/1.0 response and the OpenMetrics text of `/metrics`. Pure
//! functions.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// What the agent reported for an upload window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) requests: u64,
    pub(crate) records_acked: u64,
}

/// The last `flotta-agent: window: R requests, N records acknowledged, B body bytes` line.
pub(crate) fn last_window(stderr: &str) -> Option<Window> {
    stderr.lines().rev().find_map(|line| {
        let rest = line.split_once("window: ")?.1;
        let (requests, rest) = rest.split_once(" requests, ")?;
        let (acked, _) = rest.split_once(" records acknowledged")?;
        Some(Window {
            requests: requests.trim().parse().ok()?,
            records_acked: acked.trim().parse().ok()?,
        })
    })
}

/// The row named `name` of a `flotta-server get` table, as header -> cell. Columns are found
/// from where the header's names start (they are padded apart by at least two spaces; a name
/// may hold one space, like `LAST SEEN`).
pub(crate) fn table_row(table: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut lines = table.lines();
    let header = lines.next()?;
    let bytes = header.as_bytes();
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| {
            bytes[i] != b' ' && (i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' '))
        })
        .collect();
    let cell = |line: &str, i: usize| -> String {
        let from = starts[i];
        let text = match starts.get(i + 1) {
            Some(&to) => line.get(from..to.min(line.len())),
            None => line.get(from..),
        };
        text.unwrap_or("").trim().to_owned()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cell(header, i)).collect();
    let name_col = names.iter().position(|n| n == "NAME")?;
    lines.find(|line| cell(line, name_col) == name).map(|line| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), cell(line, i)))
            .collect()
    })
}

/// The value of the first `key: value` line of a YAML document, at any depth, unquoted.
pub(crate) fn yaml_value<'a>(yaml: &'a str, key: &str) -> Option<&'a str> {
    yaml.lines().find_map(|line| {
        let value = line
            .trim_start()
            .strip_prefix(key)?
            .strip_prefix(':')?
            .trim();
        Some(value.trim_matches(|c| c == '\'' || c == '"'))
    })
}

/// The body of an HTTP response, which must have status 200.
pub(crate) fn ok_body(response: &str) -> Result<&str> {
    let status_line = response.lines().next().unwrap_or("");
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if !status_line.starts_with("HTTP/") || status != "200" {
        bail!(
            "expected `HTTP/1.x 200`, got `{status_line}`\n{}",
            response.chars().take(2000).collect::<String>()
        );
    }
    Ok(response.split_once("\r\n\r\n").map_or("", |(_, body)| body))
}

/// Every sample of metric `name` (a counter's name includes `_total`), as (labels, value):
/// `flotta_records_received_total{class="event"} 1` gives `("class=\"event\"", 1.0)`.
pub(crate) fn samples(exposition: &str, name: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                let (labels, value) = r.split_once('}')?;
                (labels.to_owned(), value)
            } else if rest.starts_with(' ') {
                (String::new(), rest)
            } else {
                return None; // a longer name with this prefix
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// The sum of every sample of `name` (0 when there is none).
pub(crate) fn sum(exposition: &str, name: &str) -> f64 {
    samples(exposition, name).iter().map(|(_, v)| v).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_window_line_is_read() {
        let stderr = "flotta-agent: device pi: queue holds 0 records (0 damaged bytes skipped); configuration version None\n\
                      flotta-agent: window: 1 requests, 2 records acknowledged, 310 body bytes\n\
                      flotta-agent: window: 3 requests, 17 records acknowledged, 999 body bytes\n";
        assert_eq!(
            last_window(stderr),
            Some(Window {
                requests: 3,
                records_acked: 17
            })
        );
        assert_eq!(
            last_window("flotta-agent: window failed: enrolment pending"),
            None
        );
        assert_eq!(last_window(""), None);
    }

    const TABLE: &str = "\
NAME             PRESENCE   PHASE   LAST SEEN   WORKLOADS   DEVICE SET   AGE
other            offline    -       <never>     0           -            3m
pi-zero-armv6    online     up      2s          0           -            5s
";

    #[test]
    fn a_table_row_is_read_by_header_columns() {
        let row = table_row(TABLE, "pi-zero-armv6").unwrap();
        assert_eq!(row["NAME"], "pi-zero-armv6");
        assert_eq!(row["PRESENCE"], "online");
        assert_eq!(row["PHASE"], "up");
        assert_eq!(row["LAST SEEN"], "2s");
        assert_eq!(row["DEVICE SET"], "-");
        assert_eq!(row["AGE"], "5s");
        assert_eq!(table_row(TABLE, "other").unwrap()["LAST SEEN"], "<never>");
        assert_eq!(table_row(TABLE, "pi-zero"), None);
        assert_eq!(table_row("", "x"), None);
    }

    #[test]
    fn a_short_last_cell_and_a_trimmed_line_still_parse() {
        let table = "NAME   PRESENCE   AGE\nabc    online     1s\nd      -\n";
        assert_eq!(table_row(table, "abc").unwrap()["AGE"], "1s");
        let d = table_row(table, "d").unwrap();
        assert_eq!(d["PRESENCE"], "-");
        assert_eq!(d["AGE"], "");
    }

    #[test]
    fn yaml_values_are_found_at_any_depth_and_unquoted() {
        let yaml = "metadata:\n  labels:\n    device.cpu-architecture: arm\n    \
                    edgedeviceSignedRequest: 'true'\n  name: pi\nstatus:\n  phase: up\n";
        assert_eq!(yaml_value(yaml, "device.cpu-architecture"), Some("arm"));
        assert_eq!(yaml_value(yaml, "edgedeviceSignedRequest"), Some("true"));
        assert_eq!(yaml_value(yaml, "phase"), Some("up"));
        assert_eq!(yaml_value(yaml, "device.cpu"), None);
        assert_eq!(yaml_value(yaml, "hostname"), None);
    }

    #[test]
    fn only_a_200_response_gives_its_body() {
        let ok = "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nbody\nmore";
        assert_eq!(ok_body(ok).unwrap(), "body\nmore");
        let err = ok_body("HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap_err();
        assert!(format!("{err:#}").contains("404"), "{err:#}");
        assert!(ok_body("garbage").is_err());
    }

    const METRICS: &str = "\
# HELP flotta_records_received Records received in batches, by class (duplicates included).
# TYPE flotta_records_received counter
flotta_records_received_total{class=\"event\"} 1
flotta_records_received_total{class=\"heartbeat\"} 2
# TYPE flotta_batches counter
flotta_batches_total 1
flotta_batches_total_extra 40
# EOF
";

    #[test]
    fn metric_samples_are_found_by_exact_name() {
        assert_eq!(
            samples(METRICS, "flotta_records_received_total"),
            [
                ("class=\"event\"".to_owned(), 1.0),
                ("class=\"heartbeat\"".to_owned(), 2.0)
            ]
        );
        assert!((sum(METRICS, "flotta_records_received_total") - 3.0).abs() < f64::EPSILON);
        assert!((sum(METRICS, "flotta_batches_total") - 1.0).abs() < f64::EPSILON);
        assert!(sum(METRICS, "flotta_tls_handshakes_total").abs() < f64::EPSILON);
    }
}
