//! The backends the store tests run against: each test body takes a
//! [`Backend`], and [`both_backends!`] instantiates it as `<test>::sqlite`
//! (a file in a temp dir) and `<test>::postgres` (a fresh database of the
//! test process's temporary PostgreSQL cluster, `postgres/test_db.rs`).
#![allow(clippy::unwrap_used)]

use super::{PostgresSettings, PostgresStore, SqliteStore, Store};

/// Where a test's store lives; [`Backend::open`] again opens the same
/// data (a reopen, as after a restart of the server).
pub(crate) trait Backend {
    /// Open (or connect to) the test's store.
    fn open(&self) -> Box<dyn Store>;
}

/// A SQLite file in a temp dir.
pub(crate) struct SqliteFile(tempfile::TempDir);

impl Backend for SqliteFile {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.0.path().join("flotta.db")).unwrap())
    }
}

/// A database of the temporary PostgreSQL cluster.
pub(crate) struct PostgresDb(pub(crate) String);

impl Backend for PostgresDb {
    fn open(&self) -> Box<dyn Store> {
        Box::new(PostgresStore::connect(&self.0, PostgresSettings::default()).unwrap())
    }
}

/// A new SQLite file.
pub(crate) fn sqlite() -> SqliteFile {
    SqliteFile(tempfile::tempdir().unwrap())
}

/// A new PostgreSQL database.
pub(crate) fn postgres() -> PostgresDb {
    PostgresDb(super::postgres::test_db::Cluster::shared().create_database())
}

/// `both_backends!(a, b)`: tests `a::sqlite`, `a::postgres`, `b::sqlite`,
/// `b::postgres` calling `fn a(backend: &dyn Backend)` and `fn b(…)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&crate::store::test_backends::sqlite());
                }

                #[test]
                fn postgres() {
                    super::$name(&crate::store::test_backends::postgres());
                }
            }
        )*
    };
}
pub(crate) use both_backends;
