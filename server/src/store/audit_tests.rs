//! The audit log on both backends: records read back as written, newest
//! first, paged by id, and kept across reopening the store.

use super::test_backends::{Backend, both_backends};
use super::*;

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        at_ms: 1_800_000_000_000 + n,
        principal: format!("user-{n}"),
        role: if n.is_multiple_of(2) {
            "admin"
        } else {
            "read-only"
        }
        .into(),
        via: "token".into(),
        method: "POST".into(),
        path: format!("/apis/devices/d{n}/approve"),
        status: if n.is_multiple_of(2) { 200 } else { 403 },
        detail: "ünïcode détail; 'quotes'".into(),
    }
}

fn written_newest_first_and_paged(backend: &dyn Backend) {
    let s = backend.open();
    assert!(s.audit_log(None, 10).unwrap().is_empty());
    for n in 0..25 {
        s.append_audit(&entry(n)).unwrap();
    }
    let first = s.audit_log(None, 10).unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].entry, entry(24));
    assert_eq!(first[9].entry, entry(15));
    assert!(first.windows(2).all(|w| w[0].id > w[1].id));
    let mut all: Vec<AuditEntry> = first.iter().map(|r| r.entry.clone()).collect();
    let mut before = first.last().map(|r| r.id);
    loop {
        let page = s.audit_log(before, 10).unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|r| r.id);
        all.extend(page.into_iter().map(|r| r.entry));
    }
    let want: Vec<AuditEntry> = (0..25).rev().map(entry).collect();
    assert_eq!(all, want, "every record once, newest first");
    drop(s);
    let again = backend.open();
    assert_eq!(again.audit_log(None, 1).unwrap()[0].entry, entry(24));
}

both_backends!(written_newest_first_and_paged);
