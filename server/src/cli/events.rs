//! `flotta-server events [DEVICE] [--since D] [--level L] [-f]` and the
//! follow mode of `flotta-server logs`: the query each sends, the printed
//! lines (`TIME DEVICE LEVEL REASON MESSAGE`, oldest first, or one JSON
//! object per line with `-o json`), and the hand-over from the history
//! page to the stream (items the stream repeats from the page are dropped).

use std::collections::HashSet;

use serde_json::Value;

/// How items are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Aligned text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The query of a feed request: device (fleet routes), since (device
/// time, ms), level, source and limit, as given.
pub fn feed_query(
    device: Option<&str>,
    since_ms: Option<u64>,
    level: Option<&str>,
    source: Option<&str>,
    limit: Option<usize>,
) -> Vec<(String, String)> {
    let mut q = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k.to_owned(), v));
        }
    };
    put("device", device.map(str::to_owned));
    put("since_ms", since_ms.map(|s| s.to_string()));
    put("level", level.map(str::to_owned));
    put("source", source.map(str::to_owned));
    put("limit", limit.map(|l| l.to_string()));
    q
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One line per event: time, device, level, reason, message.
pub fn format_event(item: &Value, lines: Lines) -> String {
    match lines {
        Lines::Json => format!("{item}\n"),
        Lines::Text => format!(
            "{} {} {:<5} {} {}\n",
            text(item, "time"),
            text(item, "device"),
            text(item, "level"),
            text(item, "reason"),
            text(item, "message")
        ),
    }
}

/// Every event of a page.
pub fn format_events(items: &[Value], lines: Lines) -> String {
    items.iter().map(|i| format_event(i, lines)).collect()
}

/// One log line as `logs` prints it while following: time, source, level,
/// message (the page's alignment is unknown there).
pub fn format_log(item: &Value, lines: Lines) -> String {
    match lines {
        Lines::Json => format!("{item}\n"),
        Lines::Text => format!(
            "{} {} {:<5} {}\n",
            text(item, "time"),
            text(item, "source"),
            text(item, "level"),
            text(item, "message")
        ),
    }
}

/// What the history page showed: the stream, opened before the page was
/// read, may deliver some of them again.
#[derive(Debug, Default)]
pub struct Shown(HashSet<String>);

impl Shown {
    /// Remember the page's items.
    pub fn new(items: &[Value]) -> Self {
        Self(items.iter().map(Value::to_string).collect())
    }

    /// Whether `item` is new (it is forgotten once seen again: the stream
    /// repeats a page's item at most once).
    pub fn is_new(&mut self, item: &Value) -> bool {
        self.0.is_empty() || !self.0.remove(&item.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn queries_carry_what_was_given() {
        assert_eq!(
            feed_query(Some("d1"), Some(5), Some("warn"), None, Some(3)),
            [
                ("device".to_owned(), "d1".to_owned()),
                ("since_ms".into(), "5".into()),
                ("level".into(), "warn".into()),
                ("limit".into(), "3".into()),
            ]
        );
        assert!(feed_query(None, None, None, None, None).is_empty());
    }

    #[test]
    fn event_lines_and_json_lines() {
        let e = json!({"time": "2026-12-02T10:00:00Z", "device": "d1", "level": "warn",
            "reason": "Hot", "message": "85 C"});
        assert_eq!(
            format_events(std::slice::from_ref(&e), Lines::Text),
            "2026-12-02T10:00:00Z d1 warn  Hot 85 C\n"
        );
        let line = format_event(&e, Lines::Json);
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), e);
        let l = json!({"time": "t", "source": "web", "level": "info", "message": "up"});
        assert_eq!(format_log(&l, Lines::Text), "t web info  up\n");
    }

    #[test]
    fn the_stream_repeating_the_page_is_dropped_once() {
        let a = json!({"reason": "A"});
        let b = json!({"reason": "B"});
        let mut shown = Shown::new(std::slice::from_ref(&a));
        assert!(!shown.is_new(&a));
        assert!(shown.is_new(&b));
        assert!(shown.is_new(&a), "a second equal event is a new one");
    }
}
