//! Building the periodic heartbeat record from the queue's counters and what
//! the system reports (uptime, battery).

use std::path::Path;

use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload, WorkloadState};

use crate::queue::Stats;

/// Seconds since boot, from `/proc/uptime`.
pub fn uptime_seconds() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split('.').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Battery charge in percent: the first `Battery` under `power_supply_dir`
/// (normally `/sys/class/power_supply`) that reports a capacity.
pub fn battery_percent(power_supply_dir: &Path) -> Option<u8> {
    let mut entries: Vec<_> = std::fs::read_dir(power_supply_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|p| {
        let kind = std::fs::read_to_string(p.join("type")).ok()?;
        if kind.trim() != "Battery" {
            return None;
        }
        let cap: u8 = std::fs::read_to_string(p.join("capacity"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(cap.min(100))
    })
}

/// The heartbeat payload for the current state, with each workload's
/// phase.
pub fn build(
    stats: &Stats,
    uptime_seconds: u64,
    battery_percent: Option<u8>,
    workloads: Vec<WorkloadState>,
) -> Payload {
    let degraded = stats.dropped.iter().any(|d| *d > 0) || stats.damaged_bytes > 0;
    Payload::Heartbeat(Heartbeat {
        status: if degraded {
            DeviceStatus::Degraded
        } else {
            DeviceStatus::Up
        },
        agent_version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds,
        queue_records: stats.records,
        queue_bytes: stats.bytes,
        dropped_records: stats.dropped,
        damaged_bytes: stats.damaged_bytes,
        battery_percent,
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn battery_is_read_from_sysfs_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(battery_percent(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("AC")).unwrap();
        std::fs::write(dir.path().join("AC/type"), "Mains\n").unwrap();
        std::fs::create_dir_all(dir.path().join("BAT0")).unwrap();
        std::fs::write(dir.path().join("BAT0/type"), "Battery\n").unwrap();
        std::fs::write(dir.path().join("BAT0/capacity"), "87\n").unwrap();
        assert_eq!(battery_percent(dir.path()), Some(87));
    }

    #[test]
    fn drops_make_the_device_degraded() {
        let ok = build(&Stats::default(), 5, None, Vec::new());
        let Payload::Heartbeat(hb) = ok else { panic!() };
        assert_eq!(hb.status, DeviceStatus::Up);
        let stats = Stats {
            dropped: [3, 0, 0],
            ..Stats::default()
        };
        let Payload::Heartbeat(hb) = build(&stats, 5, Some(50), Vec::new()) else {
            panic!()
        };
        assert_eq!(
            (hb.status, hb.dropped_records, hb.battery_percent),
            (DeviceStatus::Degraded, [3, 0, 0], Some(50))
        );
    }
}
