//! Audit records of the admin listener: who changed what, when, and how it
//! ended. Written by `admin_auth::guard` after each state-changing request,
//! kept by the store (table `audit`), read newest first.

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When, ms since the Unix epoch (server time).
    pub at_ms: u64,
    /// Who: the token's or certificate's name, or `local`.
    pub principal: String,
    /// Their role: `admin` or `read-only`.
    pub role: String,
    /// How they proved it: `token`, `certificate <serial>` or `local`.
    pub via: String,
    /// The HTTP method.
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// What the handler says it did, or why the request was refused.
    pub detail: String,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing with every record.
    pub id: u64,
    /// The record.
    pub entry: AuditEntry,
}
