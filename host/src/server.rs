//! The HTTP server: route each request, then run it in a fresh instance
//! of the matched component (one store per request, as in Spin).

use crate::app::{App, LoadedComponent};
use crate::routes::RouteMatch;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

/// Accepts connections forever.
pub async fn serve(app: Arc<App>, listener: TcpListener) -> Result<()> {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // E.g. too many open files: keep serving the others.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, req, client).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                if !err.is_incomplete_message() {
                    eprintln!("connection from {client}: {err}");
                }
            }
        });
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}

/// Handles one request and writes its log line.
async fn handle(
    app: &App,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let start = Instant::now();
    let method = req.method().clone();
    // Only the path is logged: the query string can carry secrets.
    let path = req.uri().path().to_string();
    let (component_id, response) = match app.router.route(&path) {
        None => ("-".to_string(), plain(StatusCode::NOT_FOUND, "Not Found")),
        Some(route) => {
            let id = route.component.to_string();
            let response = match app.components.get(route.component) {
                Some(component) => run_component(app, component.clone(), req, &route, client).await,
                None => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            };
            (id, response)
        }
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "{method} {path} {component_id} {} {ms:.3}ms",
        response.status().as_u16()
    );
    response
}

/// Sets the `spin-*` headers and gives the request an absolute URI (with
/// the original path and query) as Spin does.
fn prepare_request(
    mut req: Request<Incoming>,
    route: &RouteMatch<'_>,
    client: SocketAddr,
) -> Result<Request<Incoming>> {
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

async fn run_component(
    app: &App,
    component: Arc<LoadedComponent>,
    req: Request<Incoming>,
    route: &RouteMatch<'_>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let req = match prepare_request(req, route, client) {
        Ok(req) => req,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "Bad Request"),
    };
    let mut store = component.new_store(&app.engine);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let id = component.id.clone();
    // The guest runs in its own task: it may keep streaming the body after
    // it has handed over the response head.
    let task = tokio::spawn(async move {
        let proxy = component.pre.instantiate_async(&mut store).await?;
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
    });
    match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => {
            eprintln!("component `{id}` returned an error: {code:?}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Err(_) => {
            let err = match task.await {
                Ok(Ok(())) => anyhow!("the component never set a response"),
                Ok(Err(err)) => anyhow::Error::from(err),
                Err(join) => anyhow!(join),
            };
            eprintln!("component `{id}` failed: {err:?}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}
