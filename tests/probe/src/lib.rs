//! Test-only Spin component: lets the end-to-end tests check the host's
//! policies and bounds from the outside.
//!
//! * `GET /probe/?url=<url>`: fetch `url` (outbound HTTP allow-list).
//! * `GET /probe/tcp?addr=<host:port>`: open a TCP connection with
//!   `std::net::TcpStream` and read one line (`allowed_outbound_hosts`
//!   `tcp://` entries, no name lookups).
//! * `GET /probe/spin`: compute forever (the host's request deadline).
//! * `POST /probe/length`: the size of the body it received.
//! * `GET /probe/sql?n=<n>`: run `SELECT 1` n times on `default`.
//! * `GET /probe/sql-errors`: the errors of a UNIQUE violation and of a
//!   trigger's `RAISE(ABORT, ...)`, as the SQLite interface returns them.

use meet_core::ports::{HttpClient, OutboundRequest};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use meet_spin::SpinHttp;
use serde_json::json;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::sqlite::{Connection, Value};
use std::io::{BufRead, BufReader};

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    meet_spin::serve(request, response_out, probe).await
}

fn probe(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    match request.path.trim_end_matches('/') {
        "/probe/tcp" => Ok(tcp(request)),
        "/probe/spin" => spin_forever(),
        "/probe/length" => Ok(ApiResponse::json(
            200,
            &json!({"length": request.body.len()}),
        )),
        "/probe/sql" => Ok(sql_statements(request)),
        "/probe/sql-errors" => Ok(sql_errors()),
        _ => fetch(request),
    }
}

fn fetch(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let url = request
        .query_param("url")
        .ok_or_else(|| ApiError::NotFoundDetail("give ?url=".into()))?;
    let outcome = SpinHttp.send(OutboundRequest {
        method: "GET".into(),
        url,
        headers: Vec::new(),
        body: Vec::new(),
        timeout: None,
    });
    Ok(match outcome {
        Ok(response) => ApiResponse::json(
            200,
            &json!({"status": response.status, "body": String::from_utf8_lossy(&response.body)}),
        ),
        Err(error) => ApiResponse::json(502, &json!({"error": error.reason})),
    })
}

fn tcp(request: &ApiRequest) -> ApiResponse {
    let addr = request.query_param("addr").unwrap_or_default();
    let connected = std::net::TcpStream::connect(addr.as_str()).and_then(|stream| {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    });
    match connected {
        Ok(line) => ApiResponse::json(200, &json!({"greeting": line.trim_end()})),
        Err(error) => ApiResponse::json(
            502,
            &json!({"error": error.to_string(), "kind": format!("{:?}", error.kind())}),
        ),
    }
}

fn spin_forever() -> Result<ApiResponse, ApiError> {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn sql_statements(request: &ApiRequest) -> ApiResponse {
    let n: usize = request
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let outcome = Connection::open_default().and_then(|db| {
        for _ in 0..n {
            db.execute("SELECT 1", &[])?;
        }
        Ok(())
    });
    match outcome {
        Ok(()) => ApiResponse::json(200, &json!({"executed": n})),
        Err(error) => ApiResponse::json(500, &json!({"error": format!("{error:?}")})),
    }
}

fn sql_errors() -> ApiResponse {
    let run = || -> Result<(String, String), spin_sdk::sqlite::Error> {
        let db = Connection::open_default()?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS probe_t (x TEXT UNIQUE)",
            "CREATE TRIGGER IF NOT EXISTS probe_no_y BEFORE INSERT ON probe_t \
             WHEN NEW.x = 'y' BEGIN SELECT RAISE(ABORT, 'y is not allowed'); END",
            "INSERT OR IGNORE INTO probe_t VALUES ('a')",
        ] {
            db.execute(statement, &[])?;
        }
        let insert = |value: &str| match db.execute(
            "INSERT INTO probe_t VALUES (?)",
            &[Value::Text(value.to_string())],
        ) {
            Ok(_) => "no error".to_string(),
            Err(error) => format!("{error:?}"),
        };
        Ok((insert("a"), insert("y")))
    };
    match run() {
        Ok((unique, raise)) => ApiResponse::json(200, &json!({"unique": unique, "raise": raise})),
        Err(error) => ApiResponse::json(500, &json!({"error": format!("{error:?}")})),
    }
}
