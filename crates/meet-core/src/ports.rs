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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE, CHECK, FOREIGN KEY or NOT NULL constraint refused the
    /// statement; the text is the database's message (it names the constraint).
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("database error: {0}")]
    Other(String),
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
