//! The slowest tests of a nextest run, read from its JUnit report, as a table: what the test
//! step spends its time on, so the CI budget stays visible as suites are added.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::steps::format_elapsed;

/// Where nextest's `ci` profile writes its JUnit report (`.config/nextest.toml`), from the
/// workspace root: nextest's store is `target/nextest` there even when `CARGO_TARGET_DIR`
/// moves the build elsewhere.
pub(crate) const JUNIT_PATH: &str = "target/nextest/ci/junit.xml";

/// One test's outcome in the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestTime {
    /// `binary::test`, as nextest names it.
    pub(crate) name: String,
    /// Wall time of the test.
    pub(crate) time: Duration,
    /// Whether it failed (or errored).
    pub(crate) failed: bool,
}

/// Every test case in a JUnit report, in file order.
pub(crate) fn parse(xml: &str) -> Result<Vec<TestTime>> {
    let mut reader = Reader::from_str(xml);
    let mut tests = Vec::new();
    // The test case being read, when its element is open (failures are child elements).
    let mut open: Option<TestTime> = None;
    loop {
        match reader.read_event().context("malformed JUnit report")? {
            Event::Start(e) if e.name().into_inner() == "testcase" => open = Some(test_case(&e)?),
            Event::Empty(e) if e.name().into_inner() == "testcase" => tests.push(test_case(&e)?),
            Event::Start(e) | Event::Empty(e)
                if matches!(e.name().into_inner(), "failure" | "error") =>
            {
                if let Some(test) = open.as_mut() {
                    test.failed = true;
                }
            }
            Event::End(e) if e.name().into_inner() == "testcase" => tests.extend(open.take()),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(tests)
}

fn test_case(e: &BytesStart<'_>) -> Result<TestTime> {
    let mut name = String::new();
    let mut class = String::new();
    let mut time = Duration::ZERO;
    for attr in e.attributes() {
        let attr = attr.context("malformed JUnit attribute")?;
        let value = attr
            .normalized_value(XmlVersion::Explicit1_0)
            .context("malformed JUnit attribute value")?;
        match attr.key.into_inner() {
            "name" => name = value.into_owned(),
            "classname" => class = value.into_owned(),
            "time" => {
                let secs: f64 = value
                    .parse()
                    .with_context(|| format!("test time `{value}` is not a number"))?;
                time = Duration::try_from_secs_f64(secs)
                    .with_context(|| format!("test time `{value}` is out of range"))?;
            }
            _ => {}
        }
    }
    let name = if class.is_empty() {
        name
    } else {
        format!("{class}::{name}")
    };
    Ok(TestTime {
        name,
        time,
        failed: false,
    })
}

/// The table: the `top` slowest tests, then the count and the sum of all test times.
pub(crate) fn table(tests: &[TestTime], top: usize) -> String {
    let mut sorted: Vec<&TestTime> = tests.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    let mut out = format!("slowest of {} tests:\n", tests.len());
    for test in sorted.iter().take(top) {
        out.push_str(&format!(
            "  {:>8}  {}{}\n",
            format_elapsed(test.time),
            test.name,
            if test.failed { "  (FAILED)" } else { "" }
        ));
    }
    let total: Duration = tests.iter().map(|t| t.time).sum();
    out.push_str(&format!(
        "  sum of all test times {} (they run in parallel)\n",
        format_elapsed(total)
    ));
    out
}

/// Prints the table for the report at `path`, or says why there is none (a report is
/// missing when the run never started; that is not a second failure).
pub(crate) fn print(path: &Path, top: usize) {
    let parsed = std::fs::read_to_string(path)
        .with_context(|| format!("no JUnit report at {}", path.display()))
        .and_then(|xml| parse(&xml));
    match parsed {
        Ok(tests) => print!("\n{}", table(&tests, top)),
        Err(e) => println!("(no slowest-tests table: {e:#})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0">
  <testsuite name="flotta-e2e::agent_e2e" tests="1">
    <testcase name="every_record" classname="flotta-e2e::agent_e2e" time="95.25">
    </testcase>
  </testsuite>
  <testsuite name="flotta-e2e::link" tests="2">
    <testcase name="counters_add_up" classname="flotta-e2e::link" time="1.5">
      <failure message="assertion failed">boom &amp; more</failure>
    </testcase>
    <testcase name="quick" classname="flotta-e2e::link" time="0.010"/>
  </testsuite>
</testsuites>"#;

    #[test]
    fn reads_names_times_and_failures() {
        let tests = parse(REPORT).unwrap();
        assert_eq!(tests.len(), 3);
        assert_eq!(tests[0].name, "flotta-e2e::agent_e2e::every_record");
        assert_eq!(tests[0].time, Duration::from_millis(95_250));
        assert!(!tests[0].failed);
        assert!(tests[1].failed);
        assert_eq!(tests[2].time, Duration::from_millis(10));
    }

    #[test]
    fn table_lists_the_slowest_first_and_the_sum() {
        let table = table(&parse(REPORT).unwrap(), 2);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "slowest of 3 tests:");
        assert!(lines[1].contains("1m35s") && lines[1].contains("agent_e2e"));
        assert!(lines[2].contains("counters_add_up  (FAILED)"), "{table}");
        assert!(!table.contains("quick"), "top 2 only: {table}");
        assert!(table.contains("sum of all test times 1m36s"), "{table}");
    }

    #[test]
    fn bad_reports_are_errors_not_panics() {
        assert!(parse("<testcase time=\"soon\"/>").is_err());
        assert!(parse("<testcase time=\"-1\"/>").is_err());
        assert!(parse("<a><b></a>").is_err());
    }
}
