//! Native implementations of the ports, for unit tests and native tools.

use std::cell::Cell;
use std::path::Path;

use time::OffsetDateTime;

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::ports::{
    Clock, Database, DbError, HttpClient, HttpError, OutboundRequest, OutboundResponse, Random,
    SqlRows, SqlValue,
};

/// SQLite through rusqlite, configured like the host's databases.
pub struct SqliteDatabase {
    connection: rusqlite::Connection,
}

impl SqliteDatabase {
    pub fn open(path: &Path) -> Result<SqliteDatabase, DbError> {
        Self::configure(rusqlite::Connection::open(path).map_err(to_db_error)?)
    }

    pub fn in_memory() -> Result<SqliteDatabase, DbError> {
        Self::configure(rusqlite::Connection::open_in_memory().map_err(to_db_error)?)
    }

    fn configure(connection: rusqlite::Connection) -> Result<SqliteDatabase, DbError> {
        connection
            .execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(to_db_error)?;
        Ok(SqliteDatabase { connection })
    }

    /// Several statements at once (schema set-up in tests).
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        self.connection.execute_batch(sql).map_err(to_db_error)
    }
}

impl Database for SqliteDatabase {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError> {
        let mut statement = self.connection.prepare(sql).map_err(to_db_error)?;
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let params = rusqlite::params_from_iter(params.iter().map(to_sql));
        let mut rows = statement.query(params).map_err(to_db_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(to_db_error)? {
            let values = (0..columns.len())
                .map(|index| row.get_ref(index).map(from_sql))
                .collect::<Result<Vec<_>, _>>()
                .map_err(to_db_error)?;
            out.push(values);
        }
        Ok(SqlRows { columns, rows: out })
    }
}

fn to_sql(value: &SqlValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(v) => Value::Integer(*v),
        SqlValue::Real(v) => Value::Real(*v),
        SqlValue::Text(v) => Value::Text(v.clone()),
        SqlValue::Blob(v) => Value::Blob(v.clone()),
    }
}

fn from_sql(value: rusqlite::types::ValueRef<'_>) -> SqlValue {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(v) => SqlValue::Integer(v),
        ValueRef::Real(v) => SqlValue::Real(v),
        ValueRef::Text(v) => SqlValue::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => SqlValue::Blob(v.to_vec()),
    }
}

/// rusqlite gives the extended result code: the kernel's one classifier
/// reads it (see [`DbError::from_sqlite`]).
fn to_db_error(error: rusqlite::Error) -> DbError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, message) => DbError::from_sqlite(
            Some(failure.extended_code),
            message.as_deref().unwrap_or(&error.to_string()),
        ),
        _ => DbError::Other(error.to_string()),
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved, for tests of expiry.
pub struct FixedClock(Cell<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> FixedClock {
        FixedClock(Cell::new(at))
    }

    pub fn advance(&self, by: time::Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0.get()
    }
}

pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buffer: &mut [u8]) {
        // The OS generator failing leaves no safe way to go on.
        getrandom::fill(buffer).expect("the operating system's random generator failed");
    }
}

/// An HTTP client for unit tests: answers from a queue of prepared
/// responses and records what was sent. An empty queue is a connection error.
#[derive(Default)]
pub struct ScriptedHttp {
    responses: RefCell<VecDeque<OutboundResponse>>,
    sent: RefCell<Vec<OutboundRequest>>,
}

impl ScriptedHttp {
    pub fn answer(&self, status: u16, content_type: &str, body: &str) {
        self.responses.borrow_mut().push_back(OutboundResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        });
    }

    pub fn sent(&self) -> Vec<OutboundRequest> {
        self.sent.borrow().clone()
    }
}

impl HttpClient for ScriptedHttp {
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let url = request.url.clone();
        self.sent.borrow_mut().push(request);
        self.responses
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| HttpError {
                url,
                reason: "connection refused (no scripted answer)".into(),
            })
    }
}

/// An in-memory database with every migration of the repository applied, in
/// order, as the host applies them (for tests of the store).
pub fn migrated_database() -> Result<SqliteDatabase, DbError> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .map_err(|error| DbError::Other(format!("{}: {error}", directory.display())))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let db = SqliteDatabase::in_memory()?;
    for file in files {
        let sql = std::fs::read_to_string(&file)
            .map_err(|error| DbError::Other(format!("{}: {error}", file.display())))?;
        db.execute_batch(&sql)?;
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_and_reports_constraints() {
        let db = SqliteDatabase::in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB)")
            .unwrap();
        db.execute(
            "INSERT INTO t (name, data) VALUES (?, ?)",
            &["a".into(), SqlValue::Blob(vec![1, 2])],
        )
        .unwrap();
        let rows = db.execute("SELECT id, name, data FROM t", &[]).unwrap();
        assert_eq!(rows.columns, ["id", "name", "data"]);
        assert_eq!(
            rows.rows,
            vec![vec![
                SqlValue::Integer(1),
                "a".into(),
                SqlValue::Blob(vec![1, 2])
            ]]
        );
        let duplicate = db.execute("INSERT INTO t (name) VALUES (?)", &["a".into()]);
        assert_eq!(
            duplicate,
            Err(DbError::Unique {
                table_column: "t.name".into()
            })
        );
        db.execute_batch(
            "CREATE TRIGGER no_b BEFORE INSERT ON t WHEN NEW.name = 'b' \
             BEGIN SELECT RAISE(ABORT, 'meet_refused:no_b: b is not allowed'); END",
        )
        .unwrap();
        let refused = db.execute("INSERT INTO t (name) VALUES ('b')", &[]);
        assert_eq!(
            refused,
            Err(DbError::Refused {
                reason: "no_b".into()
            })
        );
    }
}
