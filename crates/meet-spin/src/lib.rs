//! What every component needs from Spin: the ports of `meet-core` on top of
//! spin-sdk, and the conversion of Spin requests and responses.

use meet_core::ports::{
    Clock, Database, DbError, HttpClient, HttpError, OutboundRequest, OutboundResponse, Random,
    SqlRows, SqlValue,
};
use meet_core::settings::{SettingError, Variables};
use meet_core::{ApiError, ApiRequest, ApiResponse, Method};
use spin_sdk::http::{Request, Response};
use spin_sdk::sqlite;

/// Runs one API request through `handler` and renders its outcome. Errors
/// become DRF bodies; server errors are logged (the host collects stderr).
pub fn serve(
    request: Request,
    handler: impl FnOnce(&ApiRequest) -> Result<ApiResponse, ApiError>,
) -> Response {
    let api_request = to_api_request(request);
    let outcome = handler(&api_request);
    let mut response = outcome.unwrap_or_else(|error| {
        if error.is_server_error() {
            eprintln!(
                "{} {}: {error}",
                api_request.method.as_str(),
                api_request.path
            );
        }
        error.to_response()
    });
    if api_request.method == Method::Head {
        response.body.clear();
    }
    to_spin_response(response)
}

fn to_api_request(request: Request) -> ApiRequest {
    let method = match request.method() {
        spin_sdk::http::Method::Get => Method::Get,
        spin_sdk::http::Method::Head => Method::Head,
        spin_sdk::http::Method::Post => Method::Post,
        spin_sdk::http::Method::Put => Method::Put,
        spin_sdk::http::Method::Patch => Method::Patch,
        spin_sdk::http::Method::Delete => Method::Delete,
        spin_sdk::http::Method::Options => Method::Options,
        other => Method::parse(&other.to_string()),
    };
    let headers = request
        .headers()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    ApiRequest {
        method,
        path: request.path().to_string(),
        query: request.query().to_string(),
        headers,
        body: request.into_body(),
    }
}

fn to_spin_response(response: ApiResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}

/// Spin variables of the calling component.
pub struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<String, SettingError> {
        spin_sdk::variables::get(name).map_err(|error| SettingError::new(name, error.to_string()))
    }
}

/// The `default` SQLite/libSQL database, opened on first use.
#[derive(Default)]
pub struct SpinDatabase {
    connection: std::cell::OnceCell<sqlite::Connection>,
}

impl SpinDatabase {
    fn connection(&self) -> Result<&sqlite::Connection, DbError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection);
        }
        let connection = sqlite::Connection::open_default().map_err(|error| {
            DbError::Other(format!("cannot open the default database: {error}"))
        })?;
        Ok(self.connection.get_or_init(|| connection))
    }
}

impl Database for SpinDatabase {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError> {
        let params: Vec<sqlite::Value> = params.iter().map(to_spin_value).collect();
        let result = self
            .connection()?
            .execute(sql, &params)
            .map_err(|error| match error {
                sqlite::Error::Io(message) if message.contains("constraint failed") => {
                    DbError::Constraint(message)
                }
                other => DbError::Other(other.to_string()),
            })?;
        Ok(SqlRows {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|row| row.values.into_iter().map(from_spin_value).collect())
                .collect(),
        })
    }
}

fn to_spin_value(value: &SqlValue) -> sqlite::Value {
    match value {
        SqlValue::Null => sqlite::Value::Null,
        SqlValue::Integer(v) => sqlite::Value::Integer(*v),
        SqlValue::Real(v) => sqlite::Value::Real(*v),
        SqlValue::Text(v) => sqlite::Value::Text(v.clone()),
        SqlValue::Blob(v) => sqlite::Value::Blob(v.clone()),
    }
}

fn from_spin_value(value: sqlite::Value) -> SqlValue {
    match value {
        sqlite::Value::Null => SqlValue::Null,
        sqlite::Value::Integer(v) => SqlValue::Integer(v),
        sqlite::Value::Real(v) => SqlValue::Real(v),
        sqlite::Value::Text(v) => SqlValue::Text(v),
        sqlite::Value::Blob(v) => SqlValue::Blob(v),
    }
}

/// The wall clock, through WASI.
pub struct SpinClock;

impl Clock for SpinClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}

/// WASI's secure random source.
pub struct SpinRandom;

impl Random for SpinRandom {
    fn fill(&self, buffer: &mut [u8]) {
        // WASI random cannot fail short of a broken host.
        getrandom::fill(buffer).expect("the host's random source failed");
    }
}

fn to_spin_method(name: &str) -> spin_sdk::http::Method {
    use spin_sdk::http::Method as M;
    match name.to_ascii_uppercase().as_str() {
        "GET" => M::Get,
        "HEAD" => M::Head,
        "POST" => M::Post,
        "PUT" => M::Put,
        "PATCH" => M::Patch,
        "DELETE" => M::Delete,
        "OPTIONS" => M::Options,
        other => M::Other(other.to_string()),
    }
}

/// Outbound HTTP, limited by the component's `allowed_outbound_hosts`.
pub struct SpinHttp;

impl HttpClient for SpinHttp {
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let url = request.url.clone();
        let failed = |reason: String| HttpError {
            url: url.clone(),
            reason,
        };
        let mut builder = Request::builder();
        builder
            .method(to_spin_method(&request.method))
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder.body(request.body).build();
        let response: Response = spin_sdk::http::run(spin_sdk::http::send(outgoing))
            .map_err(|e| failed(e.to_string()))?;
        Ok(OutboundResponse {
            status: *response.status(),
            headers: response
                .headers()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: response.into_body(),
        })
    }
}
