//! What every component needs from Spin: the ports of `meet-core` on top of
//! spin-sdk, and the conversion of Spin requests and responses.

mod mail;
pub use mail::SpinMailer;

use meet_core::ports::{
    Clock, Database, DbError, HttpClient, HttpError, OutboundRequest, OutboundResponse, Random,
    SqlRows, SqlValue,
};
use meet_core::settings::{SettingError, Variables};
use meet_core::{ApiError, ApiRequest, ApiResponse, Method};
use spin_sdk::http::{
    Fields, IncomingRequest, Method as SpinMethod, OutgoingResponse, Request, Response,
    ResponseOutparam,
};
use spin_sdk::sqlite;

/// Runs one API request through `handler` and writes its outcome. Errors
/// become DRF bodies; server errors are logged (the host collects stderr).
/// The low-level WASI response is used because a response may carry several
/// headers of one name (`Set-Cookie`), which spin-sdk's `Response` cannot.
pub async fn serve(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    handler: impl FnOnce(&ApiRequest) -> Result<ApiResponse, ApiError>,
) {
    let response = match to_api_request(request).await {
        Ok(api_request) => respond(&api_request, handler),
        Err(error) => {
            eprintln!("reading the request body failed: {error}");
            ApiError::Custom {
                status: 400,
                body: serde_json::json!({"detail": "The request body could not be read."}),
            }
            .to_response()
        }
    };
    write_response(response_out, response).await;
}

fn respond(
    request: &ApiRequest,
    handler: impl FnOnce(&ApiRequest) -> Result<ApiResponse, ApiError>,
) -> ApiResponse {
    let mut response = handler(request).unwrap_or_else(|error| {
        if error.is_server_error() {
            eprintln!("{} {}: {error}", request.method.as_str(), request.path);
        }
        error.to_response()
    });
    if request.method == Method::HEAD {
        response.body.clear();
    }
    response
}

async fn to_api_request(request: IncomingRequest) -> Result<ApiRequest, String> {
    let method = match request.method() {
        SpinMethod::Get => Method::GET,
        SpinMethod::Head => Method::HEAD,
        SpinMethod::Post => Method::POST,
        SpinMethod::Put => Method::PUT,
        SpinMethod::Patch => Method::PATCH,
        SpinMethod::Delete => Method::DELETE,
        SpinMethod::Options => Method::OPTIONS,
        other => meet_core::http::parse_method(&other.to_string()),
    };
    let mut headers: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    // WASI HTTP carries the host as the request's authority, not as a
    // header: put it back where the core looks for it.
    if !headers.iter().any(|(name, _)| name == "host") {
        if let Some(authority) = request.authority() {
            headers.push(("host".into(), authority));
        }
    }
    let path_and_query = request.path_with_query().unwrap_or_else(|| "/".into());
    let mut api_request = ApiRequest::new(method, &path_and_query);
    api_request.headers = headers;
    api_request.body = request.into_body().await.map_err(|e| e.to_string())?;
    Ok(api_request)
}

async fn write_response(response_out: ResponseOutparam, response: ApiResponse) {
    let fields: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let headers = Fields::from_list(&fields).unwrap_or_else(|error| {
        eprintln!("invalid response header: {error:?}");
        Fields::new()
    });
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(response.status).is_err() {
        eprintln!("invalid response status {}", response.status);
    }
    if let Err(error) = response_out.set_with_body(outgoing, response.body).await {
        eprintln!("writing the response failed: {error}");
    }
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

/// Runs `f` with the Spin implementation of every port; the database is
/// opened only if `f` uses it.
pub fn with_services<R>(f: impl FnOnce(&meet_core::ports::Services) -> R) -> R {
    let db = SpinDatabase::default();
    let services = meet_core::ports::Services {
        db: &db,
        http: &SpinHttp,
        clock: &SpinClock,
        random: &SpinRandom,
        variables: &SpinVariables,
    };
    f(&services)
}
