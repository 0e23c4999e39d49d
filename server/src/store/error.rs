//! Errors of the device store.

/// Anything that can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device is not in the store.
    #[error("device \"{0}\" not found")]
    DeviceNotFound(String),
    /// A value the store cannot represent (e.g. a sequence number above 2^63-1).
    #[error("{0}")]
    OutOfRange(String),
    /// Opening the database file failed.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// JSON stored in the database no longer parses.
    #[error("stored JSON is corrupt: {0}")]
    CorruptJson(#[from] serde_json::Error),
    /// A row changed under the caller (a key id taken, a counter reserved
    /// by someone else, a context rotated away): read again and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A link address (e.g. an IMEI) is bound to another device: unbind it
    /// there first.
    #[error("{address} is bound to device \"{device}\"; unbind it there first")]
    AddressBound {
        /// The address (`sbd 300234010753370`).
        address: String,
        /// The device that has it.
        device: String,
    },
    /// The Kubernetes API server refused or failed a request about an
    /// object (`objects = "kubernetes"`).
    #[error("kubernetes: {message}")]
    Kubernetes {
        /// What happened, with the API server's message.
        message: String,
        /// Whether trying again may succeed (5xx, 429, timeouts, connection
        /// errors, conflicts).
        retriable: bool,
    },
    /// PostgreSQL refused or failed an operation, or the connection to it
    /// failed (`store = "postgres"`).
    #[error("postgresql: {}", postgres_detail(.0))]
    Postgres(#[from] postgres::Error),
    /// No pooled PostgreSQL connection could be had in time (the server is
    /// down, restarting or every connection is busy).
    #[error("postgresql connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The store's lock was poisoned by a panicking thread.
    #[error("the store is unusable after a panic in another thread")]
    Poisoned,
}

impl StoreError {
    /// Whether the same operation may succeed if tried again (the database
    /// was busy or locked, or ran out of resources for a moment; for
    /// PostgreSQL also a lost connection, a server shutting down or starting
    /// up, a serialization failure or deadlock that outlived the store's own
    /// retries, and a pool time-out).
    pub fn is_retriable(&self) -> bool {
        use rusqlite::ErrorCode::{
            DatabaseBusy, DatabaseLocked, DiskFull, OutOfMemory, SystemIoFailure,
        };
        match self {
            StoreError::Conflict(_) => true,
            StoreError::Kubernetes { retriable, .. } => *retriable,
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _))
            | StoreError::Open {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => matches!(
                e.code,
                DatabaseBusy | DatabaseLocked | DiskFull | OutOfMemory | SystemIoFailure
            ),
            StoreError::Postgres(e) => postgres_retriable(e),
            StoreError::Pool(_) => true,
            _ => false,
        }
    }
}

/// What PostgreSQL said (`db error` alone names nothing): the SQLSTATE and
/// message of a database error, else the error and its cause.
fn postgres_detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// SQLSTATEs (and connection failures without one) after which the same
/// operation may succeed: connection exceptions (class 08), admin shutdown,
/// crash shutdown and "cannot connect now" (57P01-57P03), insufficient
/// resources (class 53), serialization failure and deadlock (40001, 40P01).
fn postgres_retriable(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }
        // No SQLSTATE: the connection closed or failed (I/O), or a value
        // did not convert (not retriable).
        None => {
            e.is_closed()
                || std::error::Error::source(e)
                    .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        }
    }
}
