//! The per-request store data and the host side of `wasi:http` outbound
//! policy and `fermyon:spin/variables@2.0.0`.

use crate::bindings::variables::{self as wit, Error};
use crate::outbound::AllowedHosts;
use crate::sqlite::{SqliteCtx, SqliteView};
use crate::variables::{is_valid_name, VariableResolver};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// Timeouts of an outbound `wasi:http` request when the guest sets none
/// (wasmtime's own default is 600 s for each).
#[derive(Debug, Clone, Copy)]
pub struct OutboundTimeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

impl Default for OutboundTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(30),
            between_bytes: Duration::from_secs(30),
        }
    }
}

impl OutboundTimeouts {
    /// The guest's options, with our defaults where it set none.
    pub fn apply(&self, guest: Option<RequestOptions>) -> RequestOptions {
        let guest = guest.unwrap_or_default();
        RequestOptions {
            connect_timeout: guest.connect_timeout.or(Some(self.connect)),
            first_byte_timeout: guest.first_byte_timeout.or(Some(self.first_byte)),
            between_bytes_timeout: guest.between_bytes_timeout.or(Some(self.between_bytes)),
        }
    }
}

/// What one component instance may see and do; built once per component
/// and shared by all of its stores.
#[derive(Clone)]
pub struct ComponentPolicy {
    pub id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub variables: Arc<VariableResolver>,
    pub sqlite: SqliteCtx,
    pub environment: Arc<Vec<(String, String)>>,
    pub outbound_timeouts: OutboundTimeouts,
}

/// The data of one `Store`, i.e. of one request.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    policy: ComponentPolicy,
    counters: Arc<RequestCounters>,
}

/// What one request's guest asked of the host, for its log line: SQL
/// statements executed (each a round trip on libSQL) and variable reads
/// (each resolved again, as in Spin).
#[derive(Debug, Default)]
pub struct RequestCounters {
    pub sql: AtomicU32,
    pub variables: AtomicU32,
}

impl HostState {
    pub fn new(policy: &ComponentPolicy) -> Self {
        let mut wasi = WasiCtx::builder();
        // Like Spin: guest stdout/stderr go to the host's, no filesystem;
        // sockets only to the `tcp://` / `udp://` addresses of
        // `allowed_outbound_hosts`, and no name lookups.
        wasi.inherit_stdout().inherit_stderr();
        for (key, value) in policy.environment.iter() {
            wasi.env(key, value);
        }
        let allowed = policy.allowed_hosts.clone();
        let component = policy.id.clone();
        wasi.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, use_| {
                let permitted = socket_permitted(&allowed, addr, use_);
                if !permitted {
                    eprintln!(
                        "socket denied: component `{component}` may not use {addr} ({use_:?}; not in allowed_outbound_hosts)"
                    );
                }
                Box::pin(async move { permitted })
            });
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: policy.id.clone(),
                allowed: policy.allowed_hosts.clone(),
                timeouts: policy.outbound_timeouts,
            },
            policy: policy.clone(),
            counters: Arc::default(),
        }
    }

    /// What this store's guest has asked of the host so far.
    pub fn counters(&self) -> Arc<RequestCounters> {
        self.counters.clone()
    }

    fn sqlite(&mut self) -> SqliteView<'_> {
        SqliteView {
            ctx: &self.policy.sqlite,
            table: &mut self.table,
            statements: &self.counters.sql,
        }
    }

    fn variables(&mut self) -> VariablesView<'_> {
        VariablesView {
            resolver: &self.policy.variables,
            reads: &self.counters.variables,
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

/// Spin's socket policy: connecting (TCP) or exchanging datagrams (UDP) needs a
/// matching `tcp://` / `udp://` entry; binding is allowed only implicitly
/// (the wildcard address, any port, as `connect` does); listening and
/// accepting are never allowed.
pub fn socket_permitted(
    allowed: &AllowedHosts,
    addr: std::net::SocketAddr,
    use_: SocketAddrUse,
) -> bool {
    match use_ {
        SocketAddrUse::TcpConnect => allowed.allows_socket("tcp", addr),
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => allowed.allows_socket("udp", addr),
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
            addr.ip().is_unspecified() && addr.port() == 0
        }
        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
    }
}

/// Enforces `allowed_outbound_hosts` before any connection is made, and
/// bounds the time of every outbound request.
struct OutboundHooks {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    timeouts: OutboundTimeouts,
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
        let options = self.timeouts.apply(options);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// The variables of one component.
pub struct VariablesView<'a> {
    resolver: &'a VariableResolver,
    reads: &'a AtomicU32,
}

struct HasVariables;

impl HasData for HasVariables {
    type Data<'a> = VariablesView<'a>;
}

impl wit::Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if !is_valid_name(&name) {
            return Ok(Err(Error::InvalidName(name)));
        }
        Ok(match self.resolver.get(&name) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(Error::Undefined(format!("no variable for {name:?}"))),
            Err(err) => Err(Error::Provider(err.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_follow_spin_s_policy() {
        let entries = vec!["tcp://127.0.0.1:2525".to_string()];
        let allowed = AllowedHosts::parse(&entries, &Default::default()).unwrap();
        let permitted = |addr: &str, use_| socket_permitted(&allowed, addr.parse().unwrap(), use_);
        assert!(permitted("127.0.0.1:2525", SocketAddrUse::TcpConnect));
        assert!(!permitted("127.0.0.1:2526", SocketAddrUse::TcpConnect));
        assert!(!permitted("127.0.0.1:2525", SocketAddrUse::UdpSend));
        // The implicit bind of `connect`, but no explicit bind or listener.
        assert!(permitted("0.0.0.0:0", SocketAddrUse::TcpBind));
        assert!(permitted("[::]:0", SocketAddrUse::TcpBind));
        assert!(!permitted("127.0.0.1:8080", SocketAddrUse::TcpBind));
        assert!(!permitted("0.0.0.0:0", SocketAddrUse::TcpListen));
        assert!(!permitted("127.0.0.1:2525", SocketAddrUse::TcpAccept));
    }

    #[test]
    fn outbound_timeouts_fill_only_what_the_guest_left_unset() {
        let ours = OutboundTimeouts::default();
        let none = ours.apply(None);
        assert_eq!(none.connect_timeout, Some(ours.connect));
        assert_eq!(none.first_byte_timeout, Some(ours.first_byte));
        assert_eq!(none.between_bytes_timeout, Some(ours.between_bytes));
        let guest = RequestOptions {
            connect_timeout: Some(Duration::from_millis(5)),
            first_byte_timeout: None,
            between_bytes_timeout: Some(Duration::from_secs(100)),
        };
        let merged = ours.apply(Some(guest));
        assert_eq!(merged.connect_timeout, Some(Duration::from_millis(5)));
        assert_eq!(merged.first_byte_timeout, Some(ours.first_byte));
        assert_eq!(merged.between_bytes_timeout, Some(Duration::from_secs(100)));
    }
}
