//! The small interfaces through which the core reaches the outside world.
//! Components implement them on Spin (`meet-spin`); [`crate::native`]
//! implements them natively for tests and tools.

use time::OffsetDateTime;

/// A value bound to or read from a SQL statement (SQLite's storage classes,
/// which is also what Spin's sqlite interface carries).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl SqlValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(value) => Some(*value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> SqlValue {
        SqlValue::Text(text.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(text: String) -> SqlValue {
        SqlValue::Text(text)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> SqlValue {
        SqlValue::Integer(value)
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> SqlValue {
        SqlValue::Integer(value.into())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> SqlValue {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// The result of one statement: column names and rows of values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

impl SqlRows {
    /// The index of a column by name, for reading rows without magic numbers.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }
}

/// Why a statement failed, classified once for every store by
/// [`DbError::from_sqlite`] (issue 12 item 5).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE or PRIMARY KEY constraint refused the statement.
    /// `table_column` is what SQLite names: `meet_room.slug`, the columns
    /// of a composite key joined by `, `, or `index '<name>'` for an index
    /// on expressions.
    #[error("UNIQUE constraint failed: {table_column}")]
    Unique { table_column: String },
    /// One of the schema's triggers refused the statement with
    /// `RAISE(ABORT, 'meet_refused:<reason>: <text>')`; `reason` is the
    /// machine-readable word (`last_owner`).
    #[error("refused by the database: {reason}")]
    Refused { reason: String },
    /// Another constraint (CHECK, NOT NULL, FOREIGN KEY) refused it.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database was locked by another connection past the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    #[error("database error: {0}")]
    Other(String),
}

/// SQLite result codes the classifier reads (sqlite3.h; stable by contract).
pub mod sqlite_codes {
    pub const BUSY: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const CONSTRAINT: i32 = 19;
    pub const CONSTRAINT_PRIMARYKEY: i32 = CONSTRAINT | (6 << 8);
    pub const CONSTRAINT_TRIGGER: i32 = CONSTRAINT | (7 << 8);
    pub const CONSTRAINT_UNIQUE: i32 = CONSTRAINT | (8 << 8);
}

impl DbError {
    /// The prefix of every message our triggers `RAISE`, followed by the
    /// reason word and `: `.
    pub const REFUSED_PREFIX: &'static str = "meet_refused:";

    /// Classifies a failure from SQLite's extended result code when the
    /// driver gives it (native rusqlite), and otherwise from the parts of
    /// the message SQLite itself fixes, which every backend passes on
    /// verbatim inside its own text (`fermyon:spin/sqlite@2.0.0` carries only
    /// `io(<message>)`, for a local file and for libSQL alike):
    /// * `UNIQUE constraint failed: <table>.<column>[, …]` (sqlite3.c's
    ///   `sqlite3UniqueConstraint`, also used for PRIMARY KEY);
    /// * our triggers' `meet_refused:<reason>:` prefix (migration 0007);
    /// * `database is locked` / `database table is locked` (sqlite3_errstr
    ///   of SQLITE_BUSY / SQLITE_LOCKED).
    pub fn from_sqlite(extended_code: Option<i32>, message: &str) -> DbError {
        use sqlite_codes::*;
        let text = message.to_string();
        match extended_code {
            Some(code) if code & 0xff == BUSY || code & 0xff == LOCKED => DbError::Busy(text),
            Some(CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY) => DbError::Unique {
                table_column: unique_target(message).unwrap_or_default(),
            },
            Some(CONSTRAINT_TRIGGER) => match refused_reason(message) {
                Some(reason) => DbError::Refused { reason },
                None => DbError::Constraint(text),
            },
            Some(code) if code & 0xff == CONSTRAINT => DbError::Constraint(text),
            Some(_) => DbError::Other(text),
            None => {
                if let Some(table_column) = unique_target(message) {
                    DbError::Unique { table_column }
                } else if let Some(reason) = refused_reason(message) {
                    DbError::Refused { reason }
                } else if message.contains("database is locked")
                    || message.contains("database table is locked")
                {
                    DbError::Busy(text)
                } else if message.contains("constraint failed") {
                    DbError::Constraint(text)
                } else {
                    DbError::Other(text)
                }
            }
        }
    }

    /// Whether a UNIQUE constraint on `table.column` refused the statement.
    pub fn is_unique(&self, table_column: &str) -> bool {
        matches!(self, DbError::Unique { table_column: found } if found == table_column)
    }

    /// Whether our triggers refused the statement for `reason`.
    pub fn is_refused(&self, reason: &str) -> bool {
        matches!(self, DbError::Refused { reason: found } if found == reason)
    }
}

/// `<table>.<column>[, …]` after SQLite's `UNIQUE constraint failed: `.
fn unique_target(message: &str) -> Option<String> {
    const MARKER: &str = "UNIQUE constraint failed: ";
    let rest = &message[message.find(MARKER)? + MARKER.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ',' | ' ' | '\'')))
        .unwrap_or(rest.len());
    let target = rest[..end].trim_end_matches([' ', ',']);
    (!target.is_empty()).then(|| target.to_string())
}

/// The reason word after [`DbError::REFUSED_PREFIX`].
fn refused_reason(message: &str) -> Option<String> {
    let rest = &message[message.find(DbError::REFUSED_PREFIX)? + DbError::REFUSED_PREFIX.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

/// One SQLite/libSQL database. Every `execute` may be a network round trip
/// in production: callers keep a request to one or two statements.
pub trait Database {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError>;
}

pub trait Clock {
    fn now(&self) -> OffsetDateTime;
}

/// Cryptographically secure randomness.
pub trait Random {
    fn fill(&self, buffer: &mut [u8]);
}

impl dyn Random + '_ {
    /// A random token of `length` characters from `[A-Za-z0-9]`, as Django's
    /// `get_random_string` draws them (rejection sampling, so no bias).
    pub fn alphanumeric(&self, length: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut out = String::with_capacity(length);
        let mut byte = [0u8; 1];
        while out.len() < length {
            self.fill(&mut byte);
            // 248 = 4 × 62: bytes above it would favour the first letters.
            if byte[0] < 248 {
                out.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
            }
        }
        out
    }
}

/// An outbound HTTP request, fully buffered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The longest wait for each network step (connecting, the first byte
    /// of the answer, between two bytes); `None` is the client's default
    /// (a few seconds, see `meet_spin::SpinHttp`).
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutboundResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::header(&self.headers, name)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("outbound request to {url} failed: {reason}")]
pub struct HttpError {
    pub url: String,
    pub reason: String,
}

impl HttpError {
    /// The start of `reason` when a network step exceeded its timeout.
    pub const TIMED_OUT: &'static str = "timed out";

    pub fn is_timeout(&self) -> bool {
        self.reason.starts_with(Self::TIMED_OUT)
    }
}

pub trait HttpClient {
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(std::cell::Cell<u8>);

    impl Random for Counter {
        fn fill(&self, buffer: &mut [u8]) {
            for byte in buffer {
                *byte = self.0.get();
                self.0.set(self.0.get().wrapping_add(1));
            }
        }
    }

    #[test]
    fn alphanumeric_tokens_skip_biased_bytes() {
        let random = Counter(std::cell::Cell::new(246));
        let random: &dyn Random = &random;
        // 246 → '8', 247 → '9', 248..=255 skipped, 0 → 'a'.
        assert_eq!(random.alphanumeric(3), "89a");
    }
}

/// Everything a request handler may reach, bundled for passing around.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    pub db: &'a dyn Database,
    pub http: &'a dyn HttpClient,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    pub variables: &'a dyn crate::settings::Variables,
}

impl Services<'_> {
    pub fn settings(&self) -> crate::settings::Settings<'_> {
        crate::settings::Settings::new(self.variables)
    }

    /// A fresh random UUID v4 in its canonical lowercase dashed form.
    pub fn new_uuid(&self) -> String {
        crate::ids::new_uuid(self.random)
    }
}

#[cfg(test)]
mod db_error_tests {
    use super::sqlite_codes::*;
    use super::DbError;

    #[test]
    fn codes_classify_native_failures() {
        let unique = DbError::from_sqlite(
            Some(CONSTRAINT_UNIQUE),
            "UNIQUE constraint failed: meet_room.slug",
        );
        assert!(unique.is_unique("meet_room.slug"), "{unique:?}");
        let refused = DbError::from_sqlite(
            Some(CONSTRAINT_TRIGGER),
            "meet_refused:last_owner: A resource should keep at least one owner.",
        );
        assert!(refused.is_refused("last_owner"), "{refused:?}");
        assert!(matches!(
            DbError::from_sqlite(Some(BUSY), "database is locked"),
            DbError::Busy(_)
        ));
        assert!(matches!(
            DbError::from_sqlite(Some(CONSTRAINT | (1 << 8)), "CHECK constraint failed: x"),
            DbError::Constraint(_)
        ));
        // A code says what it is, whatever the text says.
        assert!(matches!(
            DbError::from_sqlite(Some(1), "UNIQUE constraint failed: t.x"),
            DbError::Other(_)
        ));
    }

    #[test]
    fn messages_alone_classify_as_every_backend_words_them() {
        for message in [
            "UNIQUE constraint failed: meet_room.slug",
            "SQLite error: UNIQUE constraint failed: meet_room.slug",
            "SQLITE_CONSTRAINT: SQLite error: UNIQUE constraint failed: meet_room.slug",
            "Remote SQLite failure: `19:2067:UNIQUE constraint failed: meet_room.slug`",
        ] {
            assert!(
                DbError::from_sqlite(None, message).is_unique("meet_room.slug"),
                "{message}"
            );
        }
        assert_eq!(
            DbError::from_sqlite(
                None,
                "UNIQUE constraint failed: meet_resource_access.user_id, meet_resource_access.resource_id"
            ),
            DbError::Unique {
                table_column: "meet_resource_access.user_id, meet_resource_access.resource_id"
                    .into()
            }
        );
        for message in [
            "meet_refused:last_owner: A resource should keep at least one owner.",
            "SQLite error: meet_refused:last_owner: A resource should keep at least one owner.",
        ] {
            assert!(
                DbError::from_sqlite(None, message).is_refused("last_owner"),
                "{message}"
            );
        }
        assert!(matches!(
            DbError::from_sqlite(None, "database is locked"),
            DbError::Busy(_)
        ));
        assert!(matches!(
            DbError::from_sqlite(None, "NOT NULL constraint failed: meet_room.name"),
            DbError::Constraint(_)
        ));
        assert!(matches!(
            DbError::from_sqlite(None, "no such table: nope"),
            DbError::Other(_)
        ));
        assert!(matches!(
            DbError::from_sqlite(None, "meet_refused:"),
            DbError::Other(_)
        ));
    }
}
