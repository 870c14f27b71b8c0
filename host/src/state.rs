//! The per-request store data and the host side of `wasi:http` outbound
//! policy and `fermyon:spin/variables@2.0.0`.

use crate::bindings::variables::{self as wit, Error};
use crate::outbound::AllowedHosts;
use crate::sqlite::{SqliteCtx, SqliteView};
use crate::variables::is_valid_name;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// What one component instance may see and do; built once per component
/// and shared by all of its stores.
#[derive(Clone)]
pub struct ComponentPolicy {
    pub id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub variables: Arc<BTreeMap<String, String>>,
    pub sqlite: SqliteCtx,
    pub environment: Arc<Vec<(String, String)>>,
}

/// The data of one `Store`, i.e. of one request.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    policy: ComponentPolicy,
}

impl HostState {
    pub fn new(policy: &ComponentPolicy) -> Self {
        let mut wasi = WasiCtx::builder();
        // Like Spin: guest stdout/stderr go to the host's, no filesystem,
        // no sockets beyond wasi:http.
        wasi.inherit_stdout().inherit_stderr();
        for (key, value) in policy.environment.iter() {
            wasi.env(key, value);
        }
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: policy.id.clone(),
                allowed: policy.allowed_hosts.clone(),
            },
            policy: policy.clone(),
        }
    }

    fn sqlite(&mut self) -> SqliteView<'_> {
        SqliteView {
            ctx: &self.policy.sqlite,
            table: &mut self.table,
        }
    }

    fn variables(&mut self) -> VariablesView<'_> {
        VariablesView {
            values: &self.policy.variables,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Enforces `allowed_outbound_hosts` before any connection is made.
struct OutboundHooks {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.allowed.allows_uri(request.uri()) {
            // Log the destination without path or query: they may carry secrets.
            let uri = request.uri();
            eprintln!(
                "outbound request denied: component `{}` may not reach {}://{}{} (not in allowed_outbound_hosts)",
                self.component,
                uri.scheme_str().unwrap_or("https"),
                uri.host().unwrap_or(""),
                uri.port().map(|p| format!(":{p}")).unwrap_or_default(),
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// The variables of one component.
pub struct VariablesView<'a> {
    values: &'a BTreeMap<String, String>,
}

struct HasVariables;

impl HasData for HasVariables {
    type Data<'a> = VariablesView<'a>;
}

impl wit::Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if !is_valid_name(&name) {
            return Ok(Err(Error::InvalidName(name)));
        }
        Ok(match self.values.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!("no variable for {name:?}"))),
        })
    }
}

/// Adds everything a Meet component may import to `linker`: WASI 0.2,
/// `wasi:http`, and the Spin SQLite and variables interfaces.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::sqlite::add_to_linker(linker, HostState::sqlite)?;
    wit::add_to_linker::<HostState, HasVariables>(linker, HostState::variables)?;
    Ok(())
}
