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
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method as SpinMethod, OutgoingBody,
    OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};
use spin_sdk::sqlite;
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{IncomingBody, RequestOptions};
use std::time::Duration;
use wasi::io::streams::StreamError;

/// Runs one API request through `handler` and writes its outcome. Errors
/// become DRF bodies; server errors are logged (the host collects stderr).
/// The low-level WASI response is used because a response may carry several
/// headers of one name (`Set-Cookie`), which spin-sdk's `Response` cannot.
pub async fn serve(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    handler: impl FnOnce(&ApiRequest) -> Result<ApiResponse, ApiError>,
) {
    let response = match to_api_request(request, &BodyLimit::default()) {
        Ok(api_request) => respond(&api_request, handler),
        Err(BodyError::Limit(error)) => ApiError::from(error).to_response(),
        Err(BodyError::TooLarge) => ApiError::Custom {
            status: 413,
            body: serde_json::json!({
                "detail": "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."
            }),
        }
        .to_response(),
        Err(BodyError::Unreadable(error)) => {
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

/// Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` default as the issue fixes it: 1 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 1_048_576;

/// The largest request body a component buffers
/// (`data_upload_max_memory_size`, listed for every component), read only
/// once a request turns out to have a body: most requests have none, and
/// every variable read is a host call resolved again.
#[derive(Default)]
struct BodyLimit(std::cell::OnceCell<Result<u64, SettingError>>);

impl BodyLimit {
    fn get(&self) -> Result<u64, BodyError> {
        self.0
            .get_or_init(|| {
                const NAME: &str = "data_upload_max_memory_size";
                match spin_sdk::variables::get(NAME) {
                    Ok(text) => text
                        .trim()
                        .parse()
                        .map_err(|_| SettingError::new(NAME, "must be a number of bytes")),
                    Err(error) => {
                        eprintln!("{NAME}: {error}; using {DEFAULT_BODY_LIMIT}");
                        Ok(DEFAULT_BODY_LIMIT)
                    }
                }
            })
            .clone()
            .map_err(BodyError::Limit)
    }
}

enum BodyError {
    /// The limit itself is misconfigured.
    Limit(SettingError),
    /// Larger than the limit: refused before it is buffered.
    TooLarge,
    Unreadable(String),
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

fn to_api_request(request: IncomingRequest, limit: &BodyLimit) -> Result<ApiRequest, BodyError> {
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
    // A declared length over the limit is refused without reading a byte;
    // a chunked body is counted as it arrives.
    let declared = api_request
        .header("content-length")
        .and_then(|length| length.trim().parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > 0) {
        if length > limit.get()? {
            return Err(BodyError::TooLarge);
        }
    }
    api_request.body = read_request_body(request, limit)?;
    Ok(api_request)
}

/// The body, read chunk by chunk, at most `limit` bytes.
fn read_request_body(request: IncomingRequest, limit: &BodyLimit) -> Result<Vec<u8>, BodyError> {
    let unreadable = |what: &str| BodyError::Unreadable(what.to_string());
    let body = request
        .consume()
        .map_err(|()| unreadable("the body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| unreadable("the body stream was already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if !bytes.is_empty()
                    && u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit.get()?
                {
                    return Err(BodyError::TooLarge);
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(BodyError::Unreadable(error.to_debug_string()))
            }
        }
    }
    drop(stream);
    let _trailers = IncomingBody::finish(body);
    Ok(bytes)
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
            .map_err(to_db_error)?;
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

/// The interface carries no result code, only SQLite's message (inside
/// the libSQL client's own words on libSQL): the kernel's classifier reads
/// the parts SQLite fixes.
fn to_db_error(error: sqlite::Error) -> DbError {
    match error {
        sqlite::Error::Io(message) => DbError::from_sqlite(None, &message),
        sqlite::Error::DatabaseFull => DbError::Other("the database is full".into()),
        other => DbError::Other(other.to_string()),
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

/// The wait for each network step of an outbound request when the request
/// names none.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest write `blocking-write-and-flush` accepts at once.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

/// Outbound HTTP, limited by the component's `allowed_outbound_hosts`.
///
/// Uses `wasi:http/outgoing-handler` directly (spin-sdk's `send` passes no
/// request options): the request's timeout, or [`DEFAULT_HTTP_TIMEOUT`],
/// bounds the connection, the first byte of the answer and the gap between
/// two bytes. The body is sent with a `Content-Length`, never chunked (some
/// servers read nothing of a chunked body). A timeout comes back as an
/// [`HttpError`] whose reason starts with [`HttpError::TIMED_OUT`].
pub struct SpinHttp;

impl HttpClient for SpinHttp {
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let url = request.url.clone();
        send_outbound(request).map_err(|reason| HttpError { url, reason })
    }
}

/// `scheme`, `authority` and `path?query` of an absolute http(s) URL.
fn split_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err("only http:// and https:// URLs are supported".into());
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    let tail = tail.split('#').next().unwrap_or_default();
    let path = match tail.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_string(),
    };
    Ok((scheme, authority.to_string(), path))
}

fn describe_error_code(code: &ErrorCode) -> String {
    match code {
        ErrorCode::ConnectionTimeout => format!("{} connecting", HttpError::TIMED_OUT),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            format!("{} waiting for the answer", HttpError::TIMED_OUT)
        }
        ErrorCode::ConnectionWriteTimeout => {
            format!("{} sending the request", HttpError::TIMED_OUT)
        }
        ErrorCode::DnsTimeout => format!("{} resolving the host name", HttpError::TIMED_OUT),
        ErrorCode::HttpRequestDenied => {
            "request denied: the host is not in the component's allowed_outbound_hosts".into()
        }
        other => format!("{other:?}"),
    }
}

fn send_outbound(request: OutboundRequest) -> Result<OutboundResponse, String> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let mut fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("content-length")
                && !name.eq_ignore_ascii_case("transfer-encoding")
        })
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into_bytes()))
        .collect();
    let method = request.method.to_ascii_uppercase();
    let has_body = !request.body.is_empty() || !matches!(method.as_str(), "GET" | "HEAD");
    if has_body {
        fields.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers =
        Fields::from_list(&fields).map_err(|error| format!("invalid header: {error:?}"))?;
    let outgoing = OutgoingRequest::new(headers);
    let invalid = |what: &str| format!("invalid request {what}");
    outgoing
        .set_method(&to_spin_method(&method))
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority.as_str()))
        .map_err(|()| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(path.as_str()))
        .map_err(|()| invalid("path"))?;

    let timeout = request.timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT);
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not support an option refuses it; the host's own
    // bounds then apply, which is all we can do.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    let body = outgoing
        .body()
        .map_err(|()| "the request body was already taken".to_string())?;
    let future_response = outgoing_handler::handle(outgoing, Some(options))
        .map_err(|code| describe_error_code(&code))?;
    write_body(body, &request.body)?;

    let response = loop {
        if let Some(outcome) = future_response.get() {
            break outcome
                .map_err(|()| "the answer was already taken".to_string())?
                .map_err(|code| describe_error_code(&code))?;
        }
        future_response.subscribe().block();
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = read_body(&response)?;
    Ok(OutboundResponse {
        status,
        headers,
        body,
    })
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    let stream = body
        .write()
        .map_err(|()| "the request body stream was already taken".to_string())?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|error| format!("sending the request body failed: {error:?}"))?;
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|code| describe_error_code(&code))
}

fn read_body(response: &IncomingResponse) -> Result<Vec<u8>, String> {
    let body = response
        .consume()
        .map_err(|()| "the answer's body was already taken".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "the answer's body stream was already taken".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                let detail = spin_sdk::wit::wasi::http0_2_0::types::http_error_code(&error)
                    .map(|code| describe_error_code(&code))
                    .unwrap_or_else(|| error.to_debug_string());
                return Err(format!("reading the answer failed: {detail}"));
            }
        }
    }
    drop(stream);
    let _trailers = IncomingBody::finish(body);
    Ok(bytes)
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
