//! The HTTP server: route each request, then run it in a fresh instance
//! of the matched component (one store per request, as in Spin).
//!
//! Every request is bounded: its body ([`ServeOptions::max_body_bytes`]),
//! its wait for a free instance ([`ServeOptions::queue_timeout`], at most
//! [`ServeOptions::max_queued`] waiting), and its whole run
//! ([`ServeOptions::request_timeout`]). Each request writes one log line to
//! stderr:
//!
//! ```text
//! METHOD PATH COMPONENT STATUS DURATIONms sql=N vars=M[ error: CAUSE]
//! ```
//!
//! `sql=N` counts the guest's `execute` calls and `vars=M` its variable
//! reads (each one resolved again, as in Spin); the line is written before
//! the last byte of the response is handed to the connection, so a client
//! that has read the whole response finds it in the log.

use crate::app::{App, LoadedComponent};
use crate::routes::RouteMatch;
use crate::state::RequestCounters;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

/// Bounds on every request the server accepts.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Largest request body accepted; a larger one is answered 413 before
    /// it is read.
    pub max_body_bytes: u64,
    /// Time from the request head to the end of the guest's run; past it
    /// the guest is stopped and the request answered 504.
    pub request_timeout: Duration,
    /// How long a request may wait for a free instance before 503.
    pub queue_timeout: Duration,
    /// Requests that may wait for an instance at once; more are answered
    /// 503 straight away.
    pub max_queued: usize,
    /// Time a connection has to send a complete request head.
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_secs(10),
            max_queued: 4096,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// `Retry-After` of a 503 answered because every instance was busy.
const RETRY_AFTER_SECONDS: &str = "1";

struct Server {
    app: Arc<App>,
    options: ServeOptions,
    /// Requests waiting for an instance slot right now.
    waiting: AtomicUsize,
}

/// Accepts connections forever.
pub async fn serve(app: Arc<App>, listener: TcpListener, options: ServeOptions) -> Result<()> {
    let server = Arc::new(Server {
        app,
        options,
        waiting: AtomicUsize::new(0),
    });
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // E.g. too many open files: keep serving the others.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let header_read_timeout = server.options.header_read_timeout;
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(handle(&server, req, client).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                if !err.is_incomplete_message() && !err.is_timeout() {
                    eprintln!("connection from {client}: {err}");
                }
            }
        });
    }
}

fn full_body(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(full_body(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}

/// A host-made error answer: `{"detail": "..."}`, like the API's own.
fn json_error(status: StatusCode, detail: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "detail": detail }).to_string();
    let mut response = Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What the log line of one request needs.
struct RequestLog {
    method: Method,
    path: String,
    component: String,
    start: Instant,
    counters: Option<Arc<RequestCounters>>,
}

impl RequestLog {
    fn write(&self, status: u16, cause: Option<&str>) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let (sql, vars) = self.counters.as_ref().map_or((0, 0), |counters| {
            (
                counters.sql.load(Ordering::Relaxed),
                counters.variables.load(Ordering::Relaxed),
            )
        });
        let (method, path, component) = (&self.method, &self.path, &self.component);
        match cause {
            None => {
                eprintln!("{method} {path} {component} {status} {ms:.3}ms sql={sql} vars={vars}")
            }
            Some(cause) => {
                let cause = one_line(cause);
                eprintln!(
                    "{method} {path} {component} {status} {ms:.3}ms sql={sql} vars={vars} error: {cause}"
                )
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Handles one request; every path out of here writes its log line once.
async fn handle(
    server: &Server,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let start = Instant::now();
    let mut log = RequestLog {
        method: req.method().clone(),
        // Only the path is logged: the query string can carry secrets.
        path: req.uri().path().to_string(),
        component: "-".to_string(),
        start,
        counters: None,
    };
    let path = log.path.clone();
    let Some(route) = server.app.router.route(&path) else {
        log.write(404, None);
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    log.component = route.component.to_string();
    let Some(component) = server.app.components.get(route.component).cloned() else {
        log.write(500, Some("the route names a component that is not loaded"));
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    match run_component(server, component, req, &route, client, &mut log).await {
        Ok(response) => {
            // The guest's response: logged when its body ends.
            let status = response.status().as_u16();
            let content_length = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let bodiless = log.method == Method::HEAD
                || status == 204
                || status == 304
                || (100..200).contains(&status);
            response.map(|body| {
                LoggedBody {
                    inner: body,
                    log: Some(log),
                    status,
                    content_length,
                    sent: 0,
                    bodiless,
                }
                .boxed_unsync()
            })
        }
        Err(HostAnswer { response, cause }) => {
            log.write(response.status().as_u16(), Some(&cause));
            response
        }
    }
}

/// A request the host answers itself, and why.
struct HostAnswer {
    response: Response<HyperOutgoingBody>,
    cause: String,
}

impl HostAnswer {
    fn new(response: Response<HyperOutgoingBody>, cause: impl Into<String>) -> Self {
        Self {
            response,
            cause: cause.into(),
        }
    }
}

/// Reads the whole body, refusing one larger than `max` bytes (by its
/// `Content-Length` before reading anything, or as it arrives).
async fn read_body(
    req: Request<Incoming>,
    max: u64,
    deadline: Instant,
) -> Result<Request<Full<Bytes>>, HostAnswer> {
    let too_large = || {
        HostAnswer::new(
            json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large."),
            format!("request body larger than {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let collected =
        tokio::time::timeout_at(deadline.into(), Limited::new(body, limit).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Full::new(collected.to_bytes()))),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(err)) => Err(HostAnswer::new(
            json_error(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            ),
            format!("reading the request body failed: {err}"),
        )),
        Err(_) => Err(HostAnswer::new(
            json_error(
                StatusCode::REQUEST_TIMEOUT,
                "The request body took too long to arrive.",
            ),
            "the request body did not arrive before the request deadline",
        )),
    }
}

/// Waits for a free instance slot of `component` and of the whole pool,
/// at most `options.queue_timeout` (and never past `deadline`).
async fn acquire_slots(
    server: &Server,
    component: &LoadedComponent,
    deadline: Instant,
) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), HostAnswer> {
    let app = &server.app;
    if let (Ok(own), Ok(pool)) = (
        component.slots.clone().try_acquire_owned(),
        app.instance_slots.clone().try_acquire_owned(),
    ) {
        return Ok((own, pool));
    }
    let busy = |cause: String| {
        let mut response = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy, please retry later.",
        );
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        HostAnswer::new(response, cause)
    };
    let waiting = server.waiting.fetch_add(1, Ordering::SeqCst);
    if waiting >= server.options.max_queued {
        server.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(busy(format!(
            "{waiting} requests already wait for an instance (--max-queued-requests)"
        )));
    }
    let until = deadline.min(Instant::now() + server.options.queue_timeout);
    let acquired = tokio::time::timeout_at(until.into(), async {
        let own = component.slots.clone().acquire_owned().await?;
        let pool = app.instance_slots.clone().acquire_owned().await?;
        Ok::<_, tokio::sync::AcquireError>((own, pool))
    })
    .await;
    server.waiting.fetch_sub(1, Ordering::SeqCst);
    match acquired {
        Ok(Ok(permits)) => Ok(permits),
        Ok(Err(closed)) => Err(busy(format!("instance slots closed: {closed}"))),
        Err(_) => Err(busy(format!(
            "no free instance of `{}` within {:.1} s",
            component.id,
            server.options.queue_timeout.as_secs_f64()
        ))),
    }
}

/// Sets the `spin-*` headers and gives the request an absolute URI (with
/// the original path and query) as Spin does.
fn prepare_request<B>(
    mut req: Request<B>,
    route: &RouteMatch<'_>,
    client: SocketAddr,
) -> Result<Request<B>> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let full_url = format!("http://{host}{path_and_query}");
    let mut spin_headers = vec![
        ("spin-full-url".to_string(), full_url.clone()),
        ("spin-path-info".to_string(), route.path_info.clone()),
        ("spin-matched-route".to_string(), route.based_route.clone()),
        ("spin-base-path".to_string(), "/".to_string()),
        (
            "spin-raw-component-route".to_string(),
            route.raw_route.to_string(),
        ),
        (
            "spin-component-route".to_string(),
            route.component_route.clone(),
        ),
        ("spin-client-addr".to_string(), client.to_string()),
    ];
    for (name, value) in &route.captures {
        spin_headers.push((
            format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value.clone(),
        ));
    }
    let headers = req.headers_mut();
    for (name, value) in spin_headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(&value)?,
        );
    }
    if !headers.contains_key(HOST) {
        headers.insert(HOST, HeaderValue::from_static("localhost"));
    }
    *req.uri_mut() = full_url.parse::<Uri>()?;
    Ok(req)
}

/// Why a guest produced no response.
enum GuestFailure {
    /// Past the request deadline: stopped.
    Deadline,
    Error(wasmtime::Error),
}

/// One line saying why a guest failed, without wasmtime's backtrace.
fn describe(err: &wasmtime::Error) -> String {
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        return format!("guest trapped: {trap}");
    }
    err.root_cause().to_string()
}

fn is_deadline_trap(err: &wasmtime::Error) -> bool {
    err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
}

async fn run_component(
    server: &Server,
    component: Arc<LoadedComponent>,
    req: Request<Incoming>,
    route: &RouteMatch<'_>,
    client: SocketAddr,
    log: &mut RequestLog,
) -> Result<Response<HyperOutgoingBody>, HostAnswer> {
    let options = &server.options;
    let deadline = log.start + options.request_timeout;
    let req = read_body(req, options.max_body_bytes, deadline).await?;
    let req = prepare_request(req, route, client).map_err(|err| {
        HostAnswer::new(
            plain(StatusCode::BAD_REQUEST, "Bad Request"),
            err.to_string(),
        )
    })?;
    let permits = acquire_slots(server, &component, deadline).await?;

    let mut store = component.new_store(&server.app.engine, deadline);
    log.counters = Some(store.data().counters());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let guest = component.clone();
    // The guest runs in its own task: it may keep streaming the body after
    // it has handed over the response head. The instance slots are freed
    // when the task ends, after the store is dropped.
    let task = tokio::spawn(async move {
        let run = async {
            let proxy = guest.pre.instantiate_async(&mut store).await?;
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await?;
            Ok::<_, wasmtime::Error>(())
        };
        let outcome = match tokio::time::timeout_at(deadline.into(), run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) if is_deadline_trap(&err) => Err(GuestFailure::Deadline),
            Ok(Err(err)) => Err(GuestFailure::Error(err)),
            Err(_) => Err(GuestFailure::Deadline),
        };
        drop(store);
        drop(permits);
        outcome
    });
    let internal = || plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(HostAnswer::new(
            internal(),
            format!("the component answered an error: {code:?}"),
        )),
        Err(_) => Err(match task.await {
            Ok(Ok(())) => HostAnswer::new(internal(), "the component never set a response"),
            Ok(Err(GuestFailure::Deadline)) => HostAnswer::new(
                json_error(StatusCode::GATEWAY_TIMEOUT, "The request took too long."),
                format!(
                    "stopped after the {:.1} s request deadline",
                    options.request_timeout.as_secs_f64()
                ),
            ),
            Ok(Err(GuestFailure::Error(err))) => HostAnswer::new(internal(), describe(&err)),
            Err(join) => HostAnswer::new(internal(), anyhow!(join).to_string()),
        }),
    }
}

/// A guest's response body that writes the request's log line when it
/// ends: before its last data reaches the connection (its `Content-Length`
/// reached, or the end of the stream), on an error, or when dropped early.
struct LoggedBody {
    inner: HyperOutgoingBody,
    log: Option<RequestLog>,
    status: u16,
    content_length: Option<u64>,
    sent: u64,
    bodiless: bool,
}

impl LoggedBody {
    fn finish(&mut self, cause: Option<&str>) {
        if let Some(log) = self.log.take() {
            log.write(self.status, cause);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.finish(None),
            Poll::Ready(Some(Err(err))) => {
                let cause = format!("the response body failed: {err}");
                this.finish(Some(&cause));
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
                let complete = this
                    .content_length
                    .is_some_and(|length| this.sent >= length);
                if complete || this.inner.is_end_stream() {
                    this.finish(None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let complete = self.bodiless
            || self.inner.is_end_stream()
            || self
                .content_length
                .is_some_and(|length| self.sent >= length);
        if complete {
            self.finish(None);
        } else {
            self.finish(Some("the client left before the response was complete"));
        }
    }
}
