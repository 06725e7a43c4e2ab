//! How the stores report what the database did: every sqlx error goes
//! through [`db`], which decides whether the database cannot take the request
//! now ([`StoreError::Unavailable`]: answered 503, to be tried again) or
//! something else went wrong ([`StoreError::Database`]: a 500, its cause
//! logged). Opening a store fails with an [`OpenError`].

use super::StoreError;

/// A sqlx error as the store reports it: unavailable when the database
/// cannot take the request now (away, busy or locked, a full disk, an I/O
/// error, a read-only file), else a database error carrying its cause.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if unavailable(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Database(Box::new(e))
    }
}

/// Whether `e` means the database cannot take a request now, rather than
/// a bug: it is expected to heal by itself.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let sqlite = d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            d.code().is_some_and(|c| {
                if sqlite {
                    sqlite_unavailable(&c)
                } else {
                    postgres_unavailable(&c)
                }
            })
        }
        _ => false,
    }
}

/// SQLite result codes (extended ones carry their primary code in the low
/// byte) of a database that cannot take a request now: busy (5), locked (6),
/// out of memory (7), read-only (8), I/O error (10), full (13), cannot open
/// (14), a lock protocol failure (15).
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15))
}

/// PostgreSQL SQLSTATEs of a database that cannot take a request now:
/// connection exceptions (class 08), insufficient resources (class 53: disk
/// full, out of memory, too many connections), a lock not available within
/// `lock_timeout` (55P03), shutdowns and "cannot connect now" (57P01–57P03),
/// an I/O error (58030), a read-only transaction (25006: a standby after a
/// failover), and a transaction the database rolled back to settle a
/// conflict with another (serialization failure 40001, deadlock 40P01):
/// nothing of it was written, and the same request again can succeed.
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "55P03" | "57P01" | "57P02" | "57P03" | "58030" | "25006" | "40001" | "40P01"
        )
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The options name no database that can be used (a bad schema name, a
    /// schema that does not exist).
    #[error("database error: error with configuration: {0}")]
    Config(String),
    /// The database has migration `0`, which this build does not know: a
    /// newer latchkey migrated it.
    #[error(
        "migration error: migration {0} was previously applied but is missing in the resolved migrations"
    )]
    UnknownMigration(i64),
    /// Migration `0` in the database differs from this build's.
    #[error("migration error: migration {0} was previously applied but has been modified")]
    ChangedMigration(i64),
    /// Applying the migrations failed otherwise.
    #[error("migration error: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database could not be reached or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpenError {
    /// A failed migration, as the store reports it.
    pub(crate) fn migrate(e: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        match e {
            MigrateError::VersionMissing(v) => OpenError::UnknownMigration(v),
            MigrateError::VersionMismatch(v) => OpenError::ChangedMigration(v),
            e => OpenError::Migrate(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_of_a_database_that_cannot_take_a_request_now() {
        // Primary codes and extended ones: busy, busy snapshot, locked,
        // nomem, read-only, read-only (file moved), I/O error, a short read,
        // a failed write, a failed fsync, full, cannot open, lock protocol.
        for code in [
            "5", "517", "6", "262", "7", "8", "1032", "10", "522", "778", "1034", "13", "14", "15",
        ] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // Bugs and bad data stay 500: error, constraint (unique, foreign
        // key, trigger), corrupt, mismatch, not a database.
        for code in ["1", "19", "2067", "787", "1811", "11", "20", "26", "x"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }

    #[test]
    fn postgres_codes_of_a_database_that_cannot_take_a_request_now() {
        for code in [
            "08006", "08001", "53000", "53100", "53200", "53300", "55P03", "57P01", "57P03",
            "58030", "25006", "40001", "40P01",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22001", "40002", "22P02"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
    }

    #[test]
    fn pool_and_io_failures_are_unavailable_and_others_are_not() {
        assert!(db(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(db(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())).is_unavailable());
        assert!(!db(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Conflict("taken".into()).is_unavailable());
        assert!(StoreError::Unavailable("busy".into()).is_unavailable());
    }
}
