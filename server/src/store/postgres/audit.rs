//! Audit records (table `audit`): appended one per state-changing admin
//! request, read newest first in pages.

use postgres::Transaction;

use super::rows::{to_i64, to_u64};
use crate::store::{AuditEntry, AuditRecord, StoreError};

/// Append one record.
pub(super) fn append(tx: &mut Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit (at_ms, principal, role, via, method, path, status, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &to_i64("audit time", e.at_ms)?,
            &e.principal,
            &e.role,
            &e.via,
            &e.method,
            &e.path,
            &i32::from(e.status),
            &e.detail,
        ],
    )?;
    Ok(())
}

/// Up to `limit` records older than `before` (all when `None`), newest first.
pub(super) fn newest(
    tx: &mut Transaction<'_>,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let before = match before {
        Some(b) => to_i64("audit id", b)?,
        None => i64::MAX,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = tx.query(
        "SELECT id, at_ms, principal, role, via, method, path, status, detail FROM audit
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        &[&before, &limit],
    )?;
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                id: to_u64(r.try_get::<_, i64>(0)?),
                entry: AuditEntry {
                    at_ms: to_u64(r.try_get::<_, i64>(1)?),
                    principal: r.try_get(2)?,
                    role: r.try_get(3)?,
                    via: r.try_get(4)?,
                    method: r.try_get(5)?,
                    path: r.try_get(6)?,
                    status: u16::try_from(r.try_get::<_, i32>(7)?).unwrap_or(0),
                    detail: r.try_get(8)?,
                },
            })
        })
        .collect()
}
