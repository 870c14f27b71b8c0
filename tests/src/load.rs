//! A small closed-loop HTTP load generator for the benchmarks: N keep-alive
//! connections on loopback, each sending the next request as soon as the
//! previous answer is read, for a fixed time. Also what the benchmarks need
//! around it: a manifest serving the app plus the baseline component, and a
//! host started with any runtime configuration (e.g. a libSQL database).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Most connections one load may open.
pub const MAX_CONNECTIONS: usize = 5_000;
/// Longest one load may run.
pub const MAX_DURATION: Duration = Duration::from_secs(120);
/// Longest one request may take before it counts as a connection error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of every request of a load.
#[derive(Clone)]
pub enum LoadBody {
    Empty,
    /// The same bytes each time.
    Fixed(Bytes),
    /// Made from the request's number (0, 1, 2, … over every connection and
    /// every load of this body, warm-up included), e.g. to hit a different
    /// row each time.
    PerRequest(Arc<dyn Fn(u64) -> Bytes + Send + Sync>, Arc<AtomicU64>),
}

impl LoadBody {
    /// A body made by `make` from each request's number.
    pub fn per_request(make: impl Fn(u64) -> Bytes + Send + Sync + 'static) -> LoadBody {
        LoadBody::PerRequest(Arc::new(make), Arc::new(AtomicU64::new(0)))
    }
}

/// What a load sends, over and over.
#[derive(Clone)]
pub struct LoadRequest {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: LoadBody,
}

impl LoadRequest {
    /// `GET path` with `headers`.
    pub fn get(path: &str, headers: &[(String, String)]) -> LoadRequest {
        LoadRequest {
            method: hyper::Method::GET,
            path: path.to_string(),
            headers: headers.to_vec(),
            body: LoadBody::Empty,
        }
    }

    /// `POST path` with a JSON body made by `body` (see [`LoadBody`]).
    pub fn post_json(path: &str, headers: &[(String, String)], body: LoadBody) -> LoadRequest {
        let mut headers = headers.to_vec();
        headers.push(("content-type".into(), "application/json".into()));
        LoadRequest {
            method: hyper::Method::POST,
            path: path.to_string(),
            headers,
            body,
        }
    }

    fn body(&self) -> Bytes {
        match &self.body {
            LoadBody::Empty => Bytes::new(),
            LoadBody::Fixed(bytes) => bytes.clone(),
            LoadBody::PerRequest(make, numbers) => make(numbers.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

pub struct LoadReport {
    /// Answers received (any status).
    pub requests: usize,
    pub elapsed: Duration,
    /// Latency of every answer, sorted.
    pub latencies: Vec<Duration>,
    /// How many answers had each status.
    pub statuses: BTreeMap<u16, usize>,
    /// Connections that failed to open, broke or timed out (each is
    /// reopened while time is left).
    pub connection_errors: usize,
    /// The first connection error, to say what went wrong.
    pub first_error: Option<String>,
}

impl LoadReport {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `fraction` of the requests completed.
    pub fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 * fraction).ceil() as usize)
            .clamp(1, self.latencies.len());
        self.latencies[index - 1]
    }

    /// Answers whose status is not 2xx.
    pub fn non_2xx(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, count)| count)
            .sum()
    }
}

/// Loads `request` on `http://<address>` on `connections` connections for
/// `duration`; every answer must have `expected_status` and no connection
/// may fail.
pub async fn run(
    address: &str,
    request: &LoadRequest,
    connections: usize,
    duration: Duration,
    expected_status: u16,
) -> anyhow::Result<LoadReport> {
    let report = generate(address, request, connections, duration).await?;
    let (method, path) = (&request.method, &request.path);
    if let Some(error) = &report.first_error {
        bail!(
            "{method} {path}: {} connection errors, the first: {error}",
            report.connection_errors
        );
    }
    if let Some((status, count)) = report
        .statuses
        .iter()
        .find(|(status, _)| **status != expected_status)
    {
        bail!("{method} {path} answered {status} ({count} times), expected {expected_status}");
    }
    Ok(report)
}

/// Like [`run`], but counts unexpected statuses and connection errors
/// instead of failing on them.
pub async fn generate(
    address: &str,
    request: &LoadRequest,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    if connections == 0 || connections > MAX_CONNECTIONS {
        bail!("connections must be between 1 and {MAX_CONNECTIONS}");
    }
    if duration > MAX_DURATION {
        bail!("a load runs at most {} s", MAX_DURATION.as_secs());
    }
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!("the load generator only targets loopback, not {address}");
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let address = address.to_string();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            one_connection(&address, &request, deadline).await
        }));
    }
    let mut report = LoadReport {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        statuses: BTreeMap::new(),
        connection_errors: 0,
        first_error: None,
    };
    for task in tasks {
        let outcome = task.await.context("load task")?;
        report.latencies.extend(outcome.latencies);
        for status in outcome.statuses {
            *report.statuses.entry(status).or_default() += 1;
        }
        report.connection_errors += outcome.errors.len();
        if report.first_error.is_none() {
            report.first_error = outcome.errors.into_iter().next();
        }
    }
    report.elapsed = started.elapsed();
    report.latencies.sort();
    report.requests = report.latencies.len();
    Ok(report)
}

#[derive(Default)]
struct ConnectionOutcome {
    latencies: Vec<Duration>,
    statuses: Vec<u16>,
    errors: Vec<String>,
}

async fn one_connection(
    address: &str,
    request: &LoadRequest,
    deadline: Instant,
) -> ConnectionOutcome {
    let mut outcome = ConnectionOutcome::default();
    while Instant::now() < deadline {
        if let Err(error) =
            requests_on_one_connection(address, request, deadline, &mut outcome).await
        {
            outcome.errors.push(format!("{error:#}"));
            // Do not spin on a refusing server.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    outcome
}

/// Sends requests on one connection until the deadline or an error.
async fn requests_on_one_connection(
    address: &str,
    load: &LoadRequest,
    deadline: Instant,
    outcome: &mut ConnectionOutcome,
) -> anyhow::Result<()> {
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(address))
        .await
        .context("connect timed out")?
        .context("connect")?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    while Instant::now() < deadline {
        let mut request = hyper::Request::builder()
            .method(load.method.clone())
            .uri(load.path.as_str())
            .header("host", address);
        for (name, value) in &load.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(Full::new(load.body()))?;
        let started = Instant::now();
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            anyhow::Ok(status)
        };
        let status = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .context("request timed out")??;
        outcome.latencies.push(started.elapsed());
        outcome.statuses.push(status);
    }
    Ok(())
}

/// Raises this process's soft limit on open files to at least `wanted`
/// (within the hard limit); child processes (the host) inherit it.
/// Returns the limit now in force.
pub fn raise_open_files_limit(wanted: u64) -> anyhow::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    if limit.rlim_cur >= wanted as libc::rlim_t {
        return Ok(limit.rlim_cur);
    }
    limit.rlim_cur = (wanted as libc::rlim_t).min(limit.rlim_max);
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// Path of the baseline component, built (release, wasm32-wasip2) on first use.
pub fn baseline_component() -> anyhow::Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "-p",
            "bench-baseline",
        ])
        .current_dir(crate::repo_root())
        .status()
        .context("running cargo")?;
    anyhow::ensure!(status.success(), "building the baseline component failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target"));
    Ok(target.join("wasm32-wasip2/release/bench_baseline.wasm"))
}

/// Writes into `dir` a manifest serving the app's `spin.toml` plus the
/// baseline component on `/baseline/...` (`/baseline/constant`,
/// `/baseline/select?slug=<slug>`), with the same `default` database.
/// Builds the app's components and the baseline first.
pub fn manifest_with_baseline(dir: &Path) -> anyhow::Result<PathBuf> {
    crate::build_app();
    let baseline = baseline_component()?;
    let root = crate::repo_root();
    let text = std::fs::read_to_string(root.join("spin.toml"))?;
    let mut manifest: toml::Table = toml::from_str(&text)?;
    let components = manifest
        .get_mut("component")
        .and_then(toml::Value::as_table_mut)
        .context("spin.toml has no [component] tables")?;
    for (_, component) in components.iter_mut() {
        let table = component
            .as_table_mut()
            .context("a [component.<id>] is not a table")?;
        // Sources resolve against the manifest's directory: make them
        // absolute, and drop build commands (already run from the root).
        if let Some(source) = table.get("source").and_then(toml::Value::as_str) {
            let absolute = root.join(source).display().to_string();
            table.insert("source".into(), absolute.into());
        }
        table.remove("build");
    }
    let mut baseline_table = toml::Table::new();
    baseline_table.insert("source".into(), baseline.display().to_string().into());
    baseline_table.insert(
        "sqlite_databases".into(),
        toml::Value::Array(vec!["default".into()]),
    );
    components.insert("baseline".into(), baseline_table.into());
    let mut trigger = toml::Table::new();
    trigger.insert("route".into(), "/baseline/...".into());
    trigger.insert("component".into(), "baseline".into());
    manifest
        .get_mut("trigger")
        .and_then(|t| t.get_mut("http"))
        .and_then(toml::Value::as_array_mut)
        .context("spin.toml has no [[trigger.http]]")?
        .push(trigger.into());
    // The host applies `migrations/` next to the manifest.
    let migrations = dir.join("migrations");
    if !migrations.exists() {
        std::os::unix::fs::symlink(root.join("migrations"), &migrations)?;
    }
    let path = dir.join("spin.toml");
    std::fs::write(&path, toml::to_string(&manifest)?)?;
    Ok(path)
}

/// A host started by the benchmarks with a runtime configuration of their
/// choosing; killed when dropped.
pub struct BenchHost {
    /// `127.0.0.1:<port>`.
    pub address: String,
    pub log_path: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl BenchHost {
    /// Runs `meet-host up` on `manifest` with `runtime_config` (TOML text)
    /// and the Spin `variables`, and waits for it to listen.
    pub fn start(
        manifest: &Path,
        runtime_config: &str,
        variables: &[(String, String)],
    ) -> anyhow::Result<BenchHost> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("runtime-config.toml");
        std::fs::write(&config_path, runtime_config)?;
        let log_path = dir.path().join("host.log");
        let mut command = Command::new(crate::host_binary());
        command
            .arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--runtime-config-file")
            .arg(&config_path)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?);
        for (name, value) in variables {
            command.env(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value,
            );
        }
        let mut child = command.spawn().context("spawning meet-host")?;
        let stdout = child.stdout.take().context("host stdout")?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on http://").nth(1) {
                    let _ = sender.send(url.trim().to_string());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(address) = receiver.recv_timeout(Duration::from_millis(50)) {
                return Ok(BenchHost {
                    address,
                    log_path,
                    child,
                    _dir: dir,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "meet-host exited with {status} before listening:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        }
        let _ = child.kill();
        bail!("meet-host did not start listening within 120 s")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for BenchHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runtime configuration putting the `default` database in a file.
pub fn file_runtime_config(path: &Path) -> String {
    format!(
        "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
        path.display().to_string()
    )
}

/// A runtime configuration putting the `default` database on a libSQL server.
pub fn libsql_runtime_config(url: &str, token: &str) -> String {
    format!("[sqlite_database.default]\ntype = \"libsql\"\nurl = {url:?}\ntoken = {token:?}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_and_connection_errors() {
        let server = crate::HelloServer::start();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let address = format!("127.0.0.1:{}", server.port);
        let root = LoadRequest::get("/", &[]);
        // The hello server closes every connection after one answer: each
        // connection then fails on its next request and is reopened.
        let report = runtime
            .block_on(generate(&address, &root, 2, Duration::from_millis(300)))
            .unwrap();
        assert!(report.statuses.get(&200).copied().unwrap_or(0) >= 2);
        assert_eq!(report.non_2xx(), 0);
        assert!(report.connection_errors >= 1);
        let strict = runtime.block_on(run(&address, &root, 1, Duration::from_millis(100), 200));
        assert!(strict.is_err(), "run refuses connection errors");
        let refused = runtime.block_on(generate("10.0.0.1:80", &root, 1, Duration::ZERO));
        assert!(refused.is_err(), "only loopback");
    }
}
