//! `flotta-agent emit`: build a log line or an event from command-line
//! arguments, for scripts and workloads on the device to hand to the agent
//! through its inbox.

use flotta_proto::payload::{Event, Level, LogLine, Payload};

/// Usage text of `emit`.
pub const USAGE: &str = "\
  emit [--config FILE] event --reason WORD [--level info|warn|error] MESSAGE...
  emit [--config FILE] log [--source NAME] [--level info|warn|error] MESSAGE...
                                 hand an event or a log line to the agent (durable on
                                 return, also while the agent is not running); events at
                                 `urgent_event_level` or above are sent at once";

fn level(s: &str) -> Result<Level, String> {
    match s {
        "info" => Ok(Level::Info),
        "warn" | "warning" => Ok(Level::Warn),
        "error" => Ok(Level::Error),
        _ => Err(format!("unknown level {s:?} (info, warn, error)")),
    }
}

/// Parse the arguments after `emit` (and after `--config FILE`, which the
/// caller strips) into a payload.
pub fn parse(args: &[String]) -> Result<Payload, String> {
    let (kind, rest) = args
        .split_first()
        .ok_or_else(|| format!("emit needs `event` or `log`\n{USAGE}"))?;
    let mut reason = None;
    let mut source = None;
    let mut lvl = Level::Info;
    let mut words = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--reason" => reason = Some(value("--reason")?),
            "--source" => source = Some(value("--source")?),
            "--level" => lvl = level(&value("--level")?)?,
            "--" => {
                words.extend(it.by_ref().cloned());
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            word => words.push(word.to_owned()),
        }
    }
    let message = words.join(" ");
    if message.is_empty() {
        return Err("emit needs a MESSAGE".into());
    }
    match kind.as_str() {
        "event" => {
            let reason = reason.ok_or("an event needs --reason WORD")?;
            if reason.is_empty() || reason.chars().any(char::is_whitespace) {
                return Err(format!("--reason must be one word, got {reason:?}"));
            }
            if source.is_some() {
                return Err("--source is for log lines".into());
            }
            Ok(Payload::Event(Event {
                reason,
                message,
                level: lvl,
            }))
        }
        "log" => {
            if reason.is_some() {
                return Err("--reason is for events".into());
            }
            Ok(Payload::Log(LogLine {
                source: source.unwrap_or_else(|| "emit".into()),
                level: lvl,
                message,
            }))
        }
        other => Err(format!("emit {other:?}: expected `event` or `log`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn events_and_logs_parse() {
        assert_eq!(
            parse(&args(
                "event --reason Flooded --level error water in the cabinet"
            ))
            .unwrap(),
            Payload::Event(Event {
                reason: "Flooded".into(),
                message: "water in the cabinet".into(),
                level: Level::Error,
            })
        );
        assert_eq!(
            parse(&args("log --source pump -- --level is text here")).unwrap(),
            Payload::Log(LogLine {
                source: "pump".into(),
                level: Level::Info,
                message: "--level is text here".into(),
            })
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (input, needle) in [
            ("", "event"),
            ("event hello", "--reason"),
            ("event --reason X", "MESSAGE"),
            ("event --reason X --level loud m", "loud"),
            ("event --reason X --source s m", "--source"),
            ("log --reason X m", "--reason"),
            ("log --colour red m", "--colour"),
            ("metric m", "metric"),
            ("log --level", "--level needs"),
        ] {
            let err = parse(&args(input)).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }
}
