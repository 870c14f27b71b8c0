//! A stand-in libSQL server: Hrana over HTTP (`POST /v2/pipeline`) on a
//! rusqlite database file, with a configurable delay added to every HTTP
//! request, so the benchmarks can show what each statement's round trip
//! costs the app in production.
//!
//! It speaks the subset of the protocol the host's client uses
//! (`host/src/libsql.rs`): a pipeline of `execute` (positional `args`,
//! `want_rows`), `sequence`, `get_autocommit` and `close` requests; batons
//! tie a stream's requests to one SQLite connection (so `BEGIN`/`COMMIT`
//! across requests work); values use Hrana's JSON encoding (integers as
//! strings, blobs as base64); failures are `{"type": "error", "error":
//! {"message", "code"}}` results with SQLite's code names. It counts HTTP
//! requests and statements, which is how the bench reports statements per
//! app request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rusqlite::types::Value as Sql;
use serde_json::{json, Value as Json};

/// A stream unused for this long is closed, as libSQL servers do.
const STREAM_IDLE_EXPIRY: Duration = Duration::from_secs(10);
/// How long a statement waits for another stream's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest pipeline body accepted.
const MAX_BODY_BYTES: usize = 16 << 20;

/// What the server has served so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HranaStats {
    /// HTTP requests on `/v2/pipeline` (each one a round trip).
    pub http_requests: usize,
    /// `execute` and `sequence` requests run (one SQL text each).
    pub statements: usize,
    /// Results that were errors (SQL errors, unknown requests).
    pub errors: usize,
}

impl std::ops::Sub for HranaStats {
    type Output = HranaStats;

    fn sub(self, earlier: HranaStats) -> HranaStats {
        HranaStats {
            http_requests: self.http_requests - earlier.http_requests,
            statements: self.statements - earlier.statements,
            errors: self.errors - earlier.errors,
        }
    }
}

#[derive(Default)]
struct Counters {
    http_requests: AtomicUsize,
    statements: AtomicUsize,
    errors: AtomicUsize,
}

/// One open stream: its connection and the baton its next request must carry.
struct OpenStream {
    connection: rusqlite::Connection,
    baton: String,
    last_used: Instant,
}

struct Shared {
    token: String,
    path: PathBuf,
    delay_micros: AtomicU64,
    counters: Counters,
    /// Open streams by id; a stream is taken out while a request uses it.
    streams: Mutex<HashMap<u64, OpenStream>>,
    /// Connections of closed streams, reused by new ones.
    idle: Mutex<Vec<rusqlite::Connection>>,
    next_stream: AtomicU64,
}

/// A running fake libSQL server on loopback; stops when dropped.
pub struct HranaServer {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl HranaServer {
    /// Starts a server on a fresh, empty database that accepts `token`
    /// and waits `delay` before answering each HTTP request.
    pub fn start(token: &str, delay: Duration) -> anyhow::Result<HranaServer> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("libsql.db");
        let first = open(&path)?;
        let mode: String = first.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "WAL refused: {mode}");
        let shared = Arc::new(Shared {
            token: token.to_string(),
            path,
            delay_micros: AtomicU64::new(delay.as_micros() as u64),
            counters: Counters::default(),
            streams: Mutex::new(HashMap::new()),
            idle: Mutex::new(vec![first]),
            next_stream: AtomicU64::new(1),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = accept_loop(listener, serving) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        Ok(HranaServer {
            url,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`, what a runtime config's `url` takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The database file behind the server (to seed or inspect it).
    pub fn db_path(&self) -> &Path {
        &self.shared.path
    }

    /// Changes the delay added to each HTTP request from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_micros
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    pub fn stats(&self) -> HranaStats {
        let counters = &self.shared.counters;
        HranaStats {
            http_requests: counters.http_requests.load(Ordering::SeqCst),
            statements: counters.statements.load(Ordering::SeqCst),
            errors: counters.errors.load(Ordering::SeqCst),
        }
    }

    /// Streams currently open (not closed by their client, not expired).
    pub fn open_streams(&self) -> usize {
        self.shared.streams.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Drop for HranaServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(serve(shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn http_error(status: StatusCode, message: &str, code: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"message": message, "code": code}))
}

/// A pipeline refused as a whole (bad body, unknown baton).
struct Refusal {
    status: StatusCode,
    message: String,
    code: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, code: &'static str) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            code,
        }
    }
}

async fn serve(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (method.as_str(), path.as_str()) {
        ("GET", "/v2" | "/health") => return json_response(StatusCode::OK, &json!({})),
        ("POST", "/v2/pipeline") => {}
        _ => return http_error(StatusCode::NOT_FOUND, "Not found", "NOT_FOUND"),
    }
    shared.counters.http_requests.fetch_add(1, Ordering::SeqCst);
    let delay = Duration::from_micros(shared.delay_micros.load(Ordering::SeqCst));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let expected = format!("Bearer {}", shared.token);
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorized {
        return http_error(StatusCode::UNAUTHORIZED, "Unauthorized", "UNAUTHORIZED");
    }
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return http_error(StatusCode::BAD_REQUEST, "Unreadable body", "BAD_REQUEST"),
    };
    let Ok(pipeline) = serde_json::from_slice::<Json>(&body) else {
        return http_error(StatusCode::BAD_REQUEST, "Body is not JSON", "BAD_REQUEST");
    };
    let worker = shared.clone();
    match tokio::task::spawn_blocking(move || run_pipeline(&worker, &pipeline)).await {
        Ok(Ok(answer)) => json_response(StatusCode::OK, &answer),
        Ok(Err(refusal)) => http_error(refusal.status, &refusal.message, refusal.code),
        Err(_) => http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Pipeline panicked",
            "INTERNAL",
        ),
    }
}

/// Runs a pipeline on its stream's connection; an HTTP error if the baton
/// is unknown or the body malformed.
fn run_pipeline(shared: &Shared, pipeline: &Json) -> Result<Json, Refusal> {
    let Some(requests) = pipeline["requests"].as_array() else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "`requests` must be a list",
            "BAD_REQUEST",
        ));
    };
    let (id, connection) = match pipeline["baton"].as_str() {
        None => {
            let reused = shared.idle.lock().ok().and_then(|mut idle| idle.pop());
            let connection = match reused {
                Some(connection) => connection,
                None => open(&shared.path).map_err(|error| {
                    Refusal::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        error.to_string(),
                        "INTERNAL",
                    )
                })?,
            };
            (
                shared.next_stream.fetch_add(1, Ordering::SeqCst),
                connection,
            )
        }
        Some(baton) => take_stream(shared, baton).ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "The stream has expired or the baton is invalid",
                "STREAM_EXPIRED",
            )
        })?,
    };
    let mut results = Vec::new();
    let mut closed = false;
    for request in requests {
        if closed {
            results.push(error_result(
                shared,
                "The stream is closed",
                "STREAM_CLOSED",
            ));
            continue;
        }
        let result = match request["type"].as_str() {
            Some("execute") => {
                shared.counters.statements.fetch_add(1, Ordering::SeqCst);
                match execute(&connection, &request["stmt"]) {
                    Ok(result) => ok_result(json!({"type": "execute", "result": result})),
                    Err((message, code)) => error_result(shared, &message, &code),
                }
            }
            Some("sequence") => {
                shared.counters.statements.fetch_add(1, Ordering::SeqCst);
                match request["sql"].as_str() {
                    None => error_result(shared, "`sql` must be a string", "SQL_INPUT_ERROR"),
                    Some(sql) => match connection.execute_batch(sql) {
                        Ok(()) => ok_result(json!({"type": "sequence"})),
                        Err(error) => {
                            let (message, code) = describe(&error);
                            error_result(shared, &message, &code)
                        }
                    },
                }
            }
            Some("get_autocommit") => ok_result(
                json!({"type": "get_autocommit", "is_autocommit": connection.is_autocommit()}),
            ),
            Some("close") => {
                closed = true;
                ok_result(json!({"type": "close"}))
            }
            other => error_result(
                shared,
                &format!("Unsupported request type {other:?}"),
                "UNSUPPORTED",
            ),
        };
        results.push(result);
    }
    let baton = if closed {
        // A stream left inside a transaction is rolled back by closing it.
        if connection.is_autocommit() {
            if let Ok(mut idle) = shared.idle.lock() {
                idle.push(connection);
            }
        }
        None
    } else {
        let baton = format!("{id}.{:016x}", rand::random::<u64>());
        if let Ok(mut streams) = shared.streams.lock() {
            streams.retain(|_, stream| stream.last_used.elapsed() < STREAM_IDLE_EXPIRY);
            streams.insert(
                id,
                OpenStream {
                    connection,
                    baton: baton.clone(),
                    last_used: Instant::now(),
                },
            );
        }
        Some(baton)
    };
    Ok(json!({"baton": baton, "base_url": null, "results": results}))
}

/// Takes the stream a baton names out of the table, if the baton is its
/// current one (each answer issues a new baton; older ones are refused).
fn take_stream(shared: &Shared, baton: &str) -> Option<(u64, rusqlite::Connection)> {
    let id: u64 = baton.split_once('.')?.0.parse().ok()?;
    let mut streams = shared.streams.lock().ok()?;
    if streams.get(&id)?.baton != baton {
        return None;
    }
    streams.remove(&id).map(|stream| (id, stream.connection))
}

fn ok_result(response: Json) -> Json {
    json!({"type": "ok", "response": response})
}

fn error_result(shared: &Shared, message: &str, code: &str) -> Json {
    shared.counters.errors.fetch_add(1, Ordering::SeqCst);
    json!({"type": "error", "error": {"message": message, "code": code}})
}

/// Runs one `execute` statement: its result, or a message and code.
fn execute(connection: &rusqlite::Connection, stmt: &Json) -> Result<Json, (String, String)> {
    let input_error = |message: &str| (message.to_string(), "SQL_INPUT_ERROR".to_string());
    let sql = stmt["sql"]
        .as_str()
        .ok_or_else(|| input_error("`stmt.sql` must be a string"))?;
    if stmt["named_args"]
        .as_array()
        .is_some_and(|named| !named.is_empty())
    {
        return Err(input_error("named arguments are not supported here"));
    }
    let args = match &stmt["args"] {
        Json::Null => Vec::new(),
        Json::Array(args) => args
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| input_error(&message))?,
        _ => return Err(input_error("`stmt.args` must be a list")),
    };
    let want_rows = stmt["want_rows"].as_bool().unwrap_or(true);
    let sql_error = |error: rusqlite::Error| describe(&error);
    let mut prepared = connection.prepare_cached(sql).map_err(sql_error)?;
    let columns: Vec<Json> = prepared
        .column_names()
        .into_iter()
        .map(|name| json!({"name": name, "decltype": null}))
        .collect();
    let readonly = prepared.readonly();
    let mut rows = prepared
        .query(rusqlite::params_from_iter(args))
        .map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        if want_rows {
            let values = (0..columns.len())
                .map(|index| row.get_ref(index).map(|value| encode(value.into())))
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            out.push(Json::Array(values));
        }
    }
    drop(rows);
    let (affected, last_rowid) = if readonly {
        (0, Json::Null)
    } else {
        (
            connection.changes(),
            json!(connection.last_insert_rowid().to_string()),
        )
    };
    Ok(json!({
        "cols": columns,
        "rows": out,
        "affected_row_count": affected,
        "last_insert_rowid": last_rowid,
    }))
}

/// A rusqlite error as a Hrana error: SQLite's message and its code name.
fn describe(error: &rusqlite::Error) -> (String, String) {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            (
                format!("SQLite error: {text}"),
                sqlite_code_name(failure.extended_code).to_string(),
            )
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => (
            format!("SQLite error: {msg}"),
            sqlite_code_name(error.extended_code).to_string(),
        ),
        other => (other.to_string(), "SQL_INPUT_ERROR".to_string()),
    }
}

/// SQLite's names for the (extended) result codes the app can meet.
fn sqlite_code_name(extended: std::ffi::c_int) -> &'static str {
    match extended {
        275 => "SQLITE_CONSTRAINT_CHECK",
        787 => "SQLITE_CONSTRAINT_FOREIGNKEY",
        1299 => "SQLITE_CONSTRAINT_NOTNULL",
        1555 => "SQLITE_CONSTRAINT_PRIMARYKEY",
        1811 => "SQLITE_CONSTRAINT_TRIGGER",
        2067 => "SQLITE_CONSTRAINT_UNIQUE",
        code => match code & 0xff {
            5 => "SQLITE_BUSY",
            6 => "SQLITE_LOCKED",
            8 => "SQLITE_READONLY",
            13 => "SQLITE_FULL",
            18 => "SQLITE_TOOBIG",
            19 => "SQLITE_CONSTRAINT",
            20 => "SQLITE_MISMATCH",
            25 => "SQLITE_RANGE",
            _ => "SQLITE_ERROR",
        },
    }
}

/// A value in Hrana's JSON encoding.
pub fn encode(value: Sql) -> Json {
    match value {
        Sql::Null => json!({"type": "null"}),
        Sql::Integer(i) => json!({"type": "integer", "value": i.to_string()}),
        Sql::Real(f) => json!({"type": "float", "value": f}),
        Sql::Text(s) => json!({"type": "text", "value": s}),
        Sql::Blob(b) => json!({
            "type": "blob",
            "base64": base64::engine::general_purpose::STANDARD_NO_PAD.encode(b),
        }),
    }
}

/// A value from Hrana's JSON encoding (integers as strings or numbers,
/// base64 with or without padding).
pub fn decode(value: &Json) -> Result<Sql, String> {
    let bad = || format!("bad value {value}");
    Ok(match value["type"].as_str() {
        Some("null") => Sql::Null,
        Some("integer") => Sql::Integer(match &value["value"] {
            Json::String(text) => text.parse().map_err(|_| bad())?,
            other => other.as_i64().ok_or_else(bad)?,
        }),
        Some("float") => Sql::Real(value["value"].as_f64().ok_or_else(bad)?),
        Some("text") => Sql::Text(value["value"].as_str().ok_or_else(bad)?.to_string()),
        Some("blob") => Sql::Blob(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(
                    value["base64"]
                        .as_str()
                        .ok_or_else(bad)?
                        .trim_end_matches('='),
                )
                .map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use meet_host::libsql::{Client, Stream};

    const TOKEN: &str = "fake-libsql-token";

    fn pipeline(server: &HranaServer, token: &str, body: Json) -> (u16, Json) {
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/v2/pipeline", server.url()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap())
    }

    #[test]
    fn the_hosts_client_runs_statements_and_migrations() {
        let server = HranaServer::start(TOKEN, Duration::ZERO).unwrap();
        let migrations = vec![meet_host::migrations::Migration {
            version: "0001".into(),
            name: "initial".into(),
            sql: "CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT UNIQUE);
                  CREATE TRIGGER t_upper AFTER INSERT ON t BEGIN SELECT 1; END;"
                .into(),
        }];
        let client = Client::new(server.url(), TOKEN);
        let applied = meet_host::migrations::apply_to_libsql(client.clone(), &migrations).unwrap();
        assert_eq!(applied.len(), 1);
        let again = meet_host::migrations::apply_to_libsql(client.clone(), &migrations).unwrap();
        assert!(again.is_empty(), "the migration was recorded");

        let mut stream = Stream::open(client.clone());
        stream
            .execute("INSERT INTO t (x, y) VALUES (7, 'seven')", vec![])
            .unwrap();
        let rows = stream.execute("SELECT x, y FROM t", vec![]).unwrap();
        assert_eq!(rows.columns, ["x", "y"]);
        let values = format!("{:?}", rows.rows[0].values);
        assert!(
            values.contains("Integer(7)") && values.contains(r#"Text("seven")"#),
            "{values}"
        );
        let duplicate = stream
            .execute("INSERT INTO t (x, y) VALUES (8, 'seven')", vec![])
            .unwrap_err();
        assert!(
            format!("{duplicate:?}").contains("UNIQUE constraint failed: t.y"),
            "{duplicate:?}"
        );
        stream.close();
        assert_eq!(server.open_streams(), 0, "close ends the stream");

        let mut intruder = Stream::open(Client::new(server.url(), "not-the-token"));
        let refused = intruder.execute("SELECT 1", vec![]).unwrap_err();
        assert!(format!("{refused:?}").contains("401"));
    }

    #[test]
    fn values_arguments_errors_and_batons_follow_hrana() {
        let server = HranaServer::start(TOKEN, Duration::ZERO).unwrap();
        let (status, answer) = pipeline(
            &server,
            TOKEN,
            json!({"baton": null, "requests": [
                {"type": "sequence", "sql": "CREATE TABLE v (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT, u TEXT UNIQUE)"},
                {"type": "execute", "stmt": {"sql": "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)", "args": [
                    {"type": "integer", "value": "9007199254740993"},
                    {"type": "float", "value": 1.5},
                    {"type": "text", "value": "é"},
                    {"type": "blob", "base64": "AAH/"},
                    {"type": "null"},
                    {"type": "text", "value": "once"},
                ]}},
                {"type": "execute", "stmt": {"sql": "SELECT * FROM v", "want_rows": true}},
                {"type": "execute", "stmt": {"sql": "INSERT INTO v (u) VALUES ('once')"}},
                {"type": "execute", "stmt": {"sql": "SELEC nonsense"}},
            ]}),
        );
        assert_eq!(status, 200);
        let results = answer["results"].as_array().unwrap();
        assert_eq!(
            results[0],
            json!({"type": "ok", "response": {"type": "sequence"}})
        );
        let insert = &results[1]["response"]["result"];
        assert_eq!(insert["affected_row_count"], 1);
        assert_eq!(insert["last_insert_rowid"], "1");
        let select = &results[2]["response"]["result"];
        assert_eq!(select["cols"][0]["name"], "i");
        assert_eq!(
            select["rows"][0],
            json!([
                {"type": "integer", "value": "9007199254740993"},
                {"type": "float", "value": 1.5},
                {"type": "text", "value": "é"},
                {"type": "blob", "base64": "AAH/"},
                {"type": "null"},
                {"type": "text", "value": "once"},
            ])
        );
        assert_eq!(results[3]["type"], "error");
        assert_eq!(results[3]["error"]["code"], "SQLITE_CONSTRAINT_UNIQUE");
        assert!(results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UNIQUE constraint failed: v.u"));
        assert_eq!(results[4]["error"]["code"], "SQLITE_ERROR");
        assert_eq!(server.stats().statements, 5);
        assert_eq!(server.stats().errors, 2);

        // The baton carries the stream (and its transaction) to the next
        // request; an old or made-up baton is refused.
        let baton = answer["baton"].as_str().unwrap().to_string();
        let (_, began) = pipeline(
            &server,
            TOKEN,
            json!({"baton": baton, "requests": [{"type": "sequence", "sql": "BEGIN"},
                {"type": "get_autocommit"}]}),
        );
        assert_eq!(began["results"][1]["response"]["is_autocommit"], false);
        let (stale, _) = pipeline(
            &server,
            TOKEN,
            json!({"baton": baton, "requests": [{"type": "close"}]}),
        );
        assert_eq!(stale, 400, "a used baton is refused");
        let next = began["baton"].as_str().unwrap();
        let (_, closed) = pipeline(
            &server,
            TOKEN,
            json!({"baton": next, "requests": [
                {"type": "execute", "stmt": {"sql": "DELETE FROM v"}},
                {"type": "close"},
            ]}),
        );
        assert_eq!(closed["baton"], Json::Null);
        // Closing inside a transaction rolled it back.
        let (_, count) = pipeline(
            &server,
            TOKEN,
            json!({"baton": null, "requests": [
                {"type": "execute", "stmt": {"sql": "SELECT count(*) AS n FROM v"}},
                {"type": "close"},
            ]}),
        );
        assert_eq!(
            count["results"][0]["response"]["result"]["rows"][0][0]["value"],
            "1"
        );
        let (unauthorized, body) = pipeline(&server, "wrong", json!({"requests": []}));
        assert_eq!(unauthorized, 401);
        assert_eq!(body["code"], "UNAUTHORIZED");
    }

    #[test]
    fn every_http_request_waits_the_configured_delay() {
        let server = HranaServer::start(TOKEN, Duration::from_millis(30)).unwrap();
        let started = Instant::now();
        let mut stream = Stream::open(Client::new(server.url(), TOKEN));
        stream.execute("SELECT 1", vec![]).unwrap();
        stream.execute("SELECT 2", vec![]).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(60));
        server.set_delay(Duration::ZERO);
        let started = Instant::now();
        stream.execute("SELECT 3", vec![]).unwrap();
        assert!(started.elapsed() < Duration::from_millis(30));
        assert_eq!(
            server.stats(),
            HranaStats {
                http_requests: 3,
                statements: 3,
                errors: 0
            }
        );
    }
}
