//! `fermyon:spin/sqlite@2.0.0` on local SQLite files (rusqlite, bundled).

use crate::bindings::sqlite::{self as wit, Error, QueryResult, RowResult, Value};
use crate::runtime_config::DatabaseLocation;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// An open connection. Both kinds block (file I/O, HTTP round trips), so
/// calls run on tokio's blocking pool; the mutex lets the connection move
/// there and back.
pub enum Connection {
    Local(Arc<Mutex<LocalConnection>>),
    Libsql(Arc<Mutex<crate::libsql::Stream>>),
}

/// A guest's connection to a database file. Like Spin, the file is opened
/// by the first statement, not by `open`.
pub struct LocalConnection {
    conn: Option<rusqlite::Connection>,
    source: FilePool,
}

impl LocalConnection {
    fn get(&mut self) -> Result<&rusqlite::Connection, Error> {
        if self.conn.is_none() {
            self.conn = Some(self.source.take().map_err(to_error)?);
        }
        self.conn.as_ref().ok_or(Error::InvalidConnection)
    }
}

/// Per-component SQLite state, shared by all of its stores.
#[derive(Clone)]
pub struct SqliteCtx {
    /// The `sqlite_databases` of the component.
    allowed: Arc<BTreeSet<String>>,
    /// Every database of the application, by name.
    databases: Arc<BTreeMap<String, Database>>,
}

/// A database as requests open it.
pub enum Database {
    File(FilePool),
    Libsql(Arc<crate::libsql::Client>),
}

/// Where a database file's connections come from. By default every guest
/// connection is a fresh `rusqlite::Connection::open`, as in Spin (so the
/// schema is parsed again each time). With `reuse`, idle connections are
/// kept and handed out again, which real Spin never does.
#[derive(Clone)]
pub struct FilePool {
    path: std::path::PathBuf,
    reuse: bool,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
}

/// Idle connections kept per database file when reusing them.
const MAX_IDLE_CONNECTIONS: usize = 64;

impl FilePool {
    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        let reused = if self.reuse {
            self.idle.lock().ok().and_then(|mut idle| idle.pop())
        } else {
            None
        };
        match reused {
            Some(conn) => Ok(conn),
            None => open_file(&self.path),
        }
    }

    /// Takes a connection back when reusing, unless a guest left a
    /// transaction open on it: that one is rolled back by closing it.
    fn give_back(&self, conn: rusqlite::Connection) {
        if !self.reuse || !conn.is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
    }
}

impl Database {
    /// `reuse_file_connections` keeps idle local connections between
    /// requests (`--reuse-sqlite-connections`); off by default, like Spin.
    pub fn new(location: &DatabaseLocation, reuse_file_connections: bool) -> Self {
        match location {
            DatabaseLocation::File(path) => Self::File(FilePool {
                path: path.clone(),
                reuse: reuse_file_connections,
                idle: Arc::new(Mutex::new(Vec::new())),
            }),
            DatabaseLocation::Libsql { url, token } => {
                Self::Libsql(crate::libsql::Client::new(url, token))
            }
        }
    }
}

impl SqliteCtx {
    pub fn new(allowed: &[String], databases: Arc<BTreeMap<String, Database>>) -> Self {
        Self {
            allowed: Arc::new(allowed.iter().cloned().collect()),
            databases,
        }
    }
}

pub struct SqliteView<'a> {
    pub ctx: &'a SqliteCtx,
    pub table: &'a mut ResourceTable,
    /// Statements the current request has executed (its log line's `sql=`).
    pub statements: &'a AtomicU32,
}

struct HasSqlite;

impl HasData for HasSqlite {
    type Data<'a> = SqliteView<'a>;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SqliteView<'_>,
) -> Result<()> {
    wit::add_to_linker::<T, HasSqlite>(linker, get)?;
    Ok(())
}

/// Opens a database file the way Spin does: `rusqlite::Connection::open`
/// with rusqlite's defaults (5 s busy timeout; the journal mode is whatever
/// the file has, WAL once `meet-host migrate` has run; foreign keys on,
/// as the bundled SQLite is built with `SQLITE_DEFAULT_FOREIGN_KEYS=1`).
pub fn open_file(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open(path)
}

/// Creates a database file (and its directory) if needed and switches it to
/// WAL, which is a persistent property of the file, so readers don't block
/// the writer. Only `migrate` does this (also the deploy step before
/// `spin up`), so Spin and this host open the same kind of file.
pub fn prepare_file(path: &Path) -> Result<()> {
    create_parent_dir(path)?;
    let conn =
        open_file(path).with_context(|| format!("cannot open database {}", path.display()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .with_context(|| format!("cannot set WAL mode on {}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("database {} refused WAL mode (got {mode})", path.display());
    }
    Ok(())
}

/// What Spin does for a local database at start-up: create its directory.
pub fn create_parent_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    Ok(())
}

fn to_sql(value: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Integer(i) => Sql::Integer(i),
        Value::Real(f) => Sql::Real(f),
        Value::Text(s) => Sql::Text(s),
        Value::Blob(b) => Sql::Blob(b),
        Value::Null => Sql::Null,
    }
}

fn from_sql(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Null => Value::Null,
    }
}

/// Every rusqlite error becomes `io(<rusqlite's message>)`, exactly as in
/// Spin: e.g. `io("UNIQUE constraint failed: t.x")`, or the message of a
/// trigger's `RAISE(ABORT, '...')` verbatim. The extended result code is
/// not passed on (Spin's interface has no place for it).
fn to_error(err: rusqlite::Error) -> Error {
    Error::Io(err.to_string())
}

/// Runs one statement and collects its rows.
pub fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    let mut stmt = conn.prepare_cached(statement).map_err(to_error)?;
    let columns: Vec<String> = stmt
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let params = rusqlite::params_from_iter(parameters.into_iter().map(to_sql));
    let mut rows = stmt.query(params).map_err(to_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(to_error)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(from_sql(row.get_ref(i).map_err(to_error)?));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

impl wit::Host for SqliteView<'_> {}

impl wit::HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let Some(db) = self.ctx.databases.get(&database) else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        if !self.ctx.allowed.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let connection = match db {
            // The file is opened by the first statement, as in Spin.
            Database::File(pool) => Connection::Local(Arc::new(Mutex::new(LocalConnection {
                conn: None,
                source: pool.clone(),
            }))),
            // The stream starts lazily with the first statement.
            Database::Libsql(client) => Connection::Libsql(Arc::new(Mutex::new(
                crate::libsql::Stream::open(client.clone()),
            ))),
        };
        Ok(Ok(self.table.push(connection)?))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let Ok(conn) = self.table.get(&connection) else {
            return Ok(Err(Error::InvalidConnection));
        };
        self.statements.fetch_add(1, Ordering::Relaxed);
        let result = match conn {
            Connection::Local(inner) => {
                let inner = inner.clone();
                tokio::task::spawn_blocking(move || {
                    let mut local = inner.lock().map_err(|_| Error::InvalidConnection)?;
                    execute(local.get()?, &statement, parameters)
                })
                .await
            }
            Connection::Libsql(inner) => {
                let inner = inner.clone();
                tokio::task::spawn_blocking(move || {
                    let mut stream = inner.lock().map_err(|_| Error::InvalidConnection)?;
                    stream.execute(&statement, parameters)
                })
                .await
            }
        };
        Ok(result.unwrap_or_else(|err| Err(Error::Io(err.to_string()))))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        match self.table.delete(connection)? {
            Connection::Local(local) => {
                // Statements run on the blocking pool hold a clone only
                // while they run; once the guest drops it, it is ours.
                if let Ok(local) = Arc::try_unwrap(local) {
                    if let Ok(LocalConnection {
                        conn: Some(conn),
                        source,
                    }) = local.into_inner()
                    {
                        source.give_back(conn);
                    }
                }
            }
            Connection::Libsql(stream) => {
                // Free the server-side stream without holding up the guest.
                tokio::task::spawn_blocking(move || {
                    if let Ok(mut stream) = stream.lock() {
                        stream.close();
                    }
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_round_trips_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("t.db");
        prepare_file(&path).unwrap();
        let conn = open_file(&path).unwrap();
        execute(
            &conn,
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)",
            vec![],
        )
        .unwrap();
        execute(
            &conn,
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            vec![
                Value::Integer(7),
                Value::Real(1.5),
                Value::Text("x".into()),
                Value::Blob(vec![1, 2]),
                Value::Null,
            ],
        )
        .unwrap();
        let result = execute(&conn, "SELECT * FROM t", vec![]).unwrap();
        assert_eq!(result.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(result.rows.len(), 1);
        assert!(matches!(result.rows[0].values[0], Value::Integer(7)));
        assert!(matches!(result.rows[0].values[4], Value::Null));
        let err = execute(&conn, "SELECT * FROM missing", vec![]).unwrap_err();
        assert!(matches!(err, Error::Io(msg) if msg.contains("missing")));
    }

    #[test]
    fn constraint_and_trigger_errors_carry_sqlite_s_message_only() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_file(&dir.path().join("e.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x TEXT UNIQUE);
             CREATE TRIGGER no_y BEFORE INSERT ON t WHEN NEW.x = 'y'
             BEGIN SELECT RAISE(ABORT, 'y is not allowed'); END;
             INSERT INTO t VALUES ('a');",
        )
        .unwrap();
        let unique = execute(
            &conn,
            "INSERT INTO t VALUES (?)",
            vec![Value::Text("a".into())],
        )
        .unwrap_err();
        assert_eq!(
            format!("{unique:?}"),
            r#"Error::Io("UNIQUE constraint failed: t.x")"#
        );
        let raised = execute(
            &conn,
            "INSERT INTO t VALUES (?)",
            vec![Value::Text("y".into())],
        )
        .unwrap_err();
        assert_eq!(format!("{raised:?}"), r#"Error::Io("y is not allowed")"#);
    }

    #[test]
    fn connections_open_like_spin_fresh_unless_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        prepare_file(&path).unwrap();
        let conn = open_file(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "journal mode comes from the file");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 5000);

        let fresh = match Database::new(&DatabaseLocation::File(path.clone()), false) {
            Database::File(pool) => pool,
            Database::Libsql(_) => unreachable!(),
        };
        fresh.give_back(fresh.take().unwrap());
        assert_eq!(fresh.idle.lock().unwrap().len(), 0);
        let reused = match Database::new(&DatabaseLocation::File(path), true) {
            Database::File(pool) => pool,
            Database::Libsql(_) => unreachable!(),
        };
        reused.give_back(reused.take().unwrap());
        assert_eq!(reused.idle.lock().unwrap().len(), 1);
    }
}
