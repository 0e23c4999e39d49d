//! Audit records (table `audit`): appended one per state-changing admin
//! request, read newest first in pages.

use rusqlite::{Connection, params};

use super::rows::{to_i64, to_u64};
use crate::store::{AuditEntry, AuditRecord, StoreError};

/// Append one record.
pub(super) fn append(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, principal, role, via, method, path, status, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        to_i64("audit time", e.at_ms)?,
        e.principal,
        e.role,
        e.via,
        e.method,
        e.path,
        i64::from(e.status),
        e.detail
    ])?;
    Ok(())
}

/// Up to `limit` records older than `before` (all when `None`), newest first.
pub(super) fn newest(
    conn: &Connection,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let before = match before {
        Some(b) => to_i64("audit id", b)?,
        None => i64::MAX,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, principal, role, via, method, path, status, detail FROM audit
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![before, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            AuditEntry {
                at_ms: 0,
                principal: r.get(2)?,
                role: r.get(3)?,
                via: r.get(4)?,
                method: r.get(5)?,
                path: r.get(6)?,
                status: u16::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                detail: r.get(8)?,
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at_ms, mut entry) = row?;
        entry.at_ms = to_u64(at_ms);
        out.push(AuditRecord {
            id: to_u64(id),
            entry,
        });
    }
    Ok(out)
}
