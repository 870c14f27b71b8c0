//! The end-to-end harness: builds the components and the host once per test
//! run, then starts a host per test on an ephemeral port with a fresh
//! database, and hands the test an HTTP client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub mod hrana_server;
pub mod livekit_server;
pub mod load;
pub mod oidc_provider;
pub mod smtp_server;
pub mod summary_service;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of the host binary next to this test binary's target directory,
/// built on first use with the same profile.
pub fn host_binary() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "meet-host", "--bin", "meet-host"]);
        if release {
            build.arg("--release");
        }
        let status = build.current_dir(repo_root()).status().expect("cargo runs");
        assert!(status.success(), "building meet-host failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        target
            .join(if release { "release" } else { "debug" })
            .join("meet-host")
    })
}

/// Builds the application's components once per test process.
pub fn build_app() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        meet_host::build(&repo_root().join("spin.toml")).expect("components build");
    });
}

/// How to start a host: which manifest, which variables.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    pub variables: Vec<(String, String)>,
    /// Reuse this database file instead of a fresh one.
    pub database: Option<PathBuf>,
    /// Extra `meet-host up` flags, e.g. `["--request-timeout", "1s"]`.
    pub host_args: Vec<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            manifest: repo_root().join("spin.toml"),
            variables: Vec::new(),
            database: None,
            host_args: Vec::new(),
        }
    }
}

impl AppOptions {
    pub fn variables(mut self, pairs: &[(String, String)]) -> AppOptions {
        self.variables.extend(pairs.iter().cloned());
        self
    }

    /// Adds `meet-host up` flags: `.host_args(&["--request-timeout", "1s"])`.
    pub fn host_args(mut self, args: &[&str]) -> AppOptions {
        self.host_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets a Spin variable the way an operator does: `SPIN_VARIABLE_<NAME>`.
    pub fn variable(mut self, name: &str, value: &str) -> AppOptions {
        self.variables.push((name.to_string(), value.to_string()));
        self
    }
}

/// A running host serving the app, with its own database and log file.
pub struct TestApp {
    pub address: String,
    pub db_path: PathBuf,
    pub runtime_config: PathBuf,
    pub log_path: PathBuf,
    pub client: reqwest::blocking::Client,
    /// The client's cookies, as a browser keeps them.
    pub cookies: std::sync::Arc<reqwest::cookie::Jar>,
    child: Child,
    _dir: tempfile::TempDir,
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default())
}

pub fn spawn_app_with(options: AppOptions) -> TestApp {
    build_app();
    start_host(&options).unwrap_or_else(|error| panic!("starting the host: {error:#}"))
}

/// Starts `meet-host up` and waits for its "listening" line.
pub fn start_host(options: &AppOptions) -> anyhow::Result<TestApp> {
    let dir = tempfile::tempdir()?;
    let db_path = options
        .database
        .clone()
        .unwrap_or_else(|| dir.path().join("meet.db"));
    let runtime_config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
            db_path.display().to_string()
        ),
    )?;
    let log_path = dir.path().join("host.log");
    let mut command = Command::new(host_binary());
    command
        .arg("up")
        .arg("--from")
        .arg(&options.manifest)
        .arg("--runtime-config-file")
        .arg(&runtime_config)
        .args(["--listen", "127.0.0.1:0"])
        .args(&options.host_args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?);
    for (name, value) in &options.variables {
        command.env(
            format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
            value,
        );
    }
    let mut child = command.spawn().context("spawning meet-host")?;
    let stdout = child.stdout.take().context("host stdout")?;
    let address = wait_for_listening(stdout, &mut child, &log_path)?;
    let cookies = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies.clone())
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(TestApp {
        address,
        db_path,
        runtime_config,
        log_path,
        client,
        cookies,
        child,
        _dir: dir,
    })
}

fn wait_for_listening(
    stdout: std::process::ChildStdout,
    child: &mut Child,
    log_path: &Path,
) -> anyhow::Result<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = sender.send(url.trim().to_string());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(url) = receiver.recv_timeout(Duration::from_millis(50)) {
            return Ok(url);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "meet-host exited with {status} before listening:\n{}",
                std::fs::read_to_string(log_path).unwrap_or_default()
            );
        }
    }
    let _ = child.kill();
    bail!("meet-host did not start listening within 120 s")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client
            .get(self.url(path))
            .send()
            .expect("GET succeeds")
    }

    /// Follows redirects from `url` (absolute, or a path on the app) as a
    /// browser does, keeping cookies; returns every URL visited and the
    /// final response.
    pub fn browse(&self, url: &str) -> (Vec<String>, reqwest::blocking::Response) {
        let mut current = if url.starts_with("http") {
            url.to_string()
        } else {
            self.url(url)
        };
        let mut visited = vec![current.clone()];
        for _ in 0..10 {
            let response = self.client.get(&current).send().expect("GET succeeds");
            if !response.status().is_redirection() {
                return (visited, response);
            }
            let location = response.headers()["location"]
                .to_str()
                .expect("ASCII location");
            let next = reqwest::Url::parse(&current)
                .and_then(|base| base.join(location))
                .expect("valid location");
            current = next.to_string();
            visited.push(current.clone());
        }
        panic!("too many redirects: {visited:?}");
    }

    /// The value of a cookie the client holds for the app.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&self.address).expect("app URL");
        let header = self.cookies.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }

    /// What the host has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every request the host has logged so far, oldest first.
    pub fn logged_requests(&self) -> Vec<LoggedRequest> {
        self.logs()
            .lines()
            .filter_map(LoggedRequest::parse)
            .collect()
    }

    /// The SQL statements (`execute` calls) the last `method path` request
    /// ran, from the host's log line. The host writes the line before the
    /// last byte of the response, so read the response body first; if no
    /// such line is there yet, this waits up to 5 s, then panics.
    ///
    /// ```ignore
    /// let response = app.get("/api/v1.0/config/");
    /// response.text().unwrap();
    /// assert!(app.sql_count("GET", "/api/v1.0/config/") <= 1);
    /// ```
    pub fn sql_count(&self, method: &str, path: &str) -> u32 {
        self.last_logged(method, path).sql
    }

    /// The host's log line of the last `method path` request (see
    /// [`TestApp::sql_count`]).
    pub fn last_logged(&self, method: &str, path: &str) -> LoggedRequest {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .logged_requests()
                .into_iter()
                .rev()
                .find(|line| line.method == method && line.path == path);
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the host logged no {method} {path} request:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A direct connection to the app's database, to check what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db_path).expect("database opens")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- host log ---\n{}", self.logs());
        }
    }
}

/// One request as the host logs it:
/// `METHOD PATH COMPONENT STATUS DURATIONms sql=N vars=M[ error: CAUSE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// `-` when no route matched.
    pub component: String,
    pub status: u16,
    pub duration_ms: f64,
    /// SQL statements the request executed.
    pub sql: u32,
    /// Variables the request read.
    pub vars: u32,
    /// Why the request failed, when the host says.
    pub error: Option<String>,
}

impl LoggedRequest {
    /// Parses a host log line; `None` for any other line.
    pub fn parse(line: &str) -> Option<LoggedRequest> {
        let (head, error) = match line.split_once(" error: ") {
            Some((head, cause)) => (head, Some(cause.to_string())),
            None => (line, None),
        };
        let mut fields = head.split(' ');
        let method = fields.next()?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let path = fields.next()?;
        let component = fields.next()?;
        let status = fields.next()?.parse().ok()?;
        let duration_ms = fields.next()?.strip_suffix("ms")?.parse().ok()?;
        let sql = fields.next()?.strip_prefix("sql=")?.parse().ok()?;
        let vars = fields.next()?.strip_prefix("vars=")?.parse().ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(LoggedRequest {
            method: method.to_string(),
            path: path.to_string(),
            component: component.to_string(),
            status,
            duration_ms,
            sql,
            vars,
            error,
        })
    }
}

/// A minimal HTTP/1.1 server on loopback that answers every request with
/// `200 hello` and counts the requests it saw.
pub struct HelloServer {
    pub port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HelloServer {
    pub fn start() -> HelloServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                );
            }
        });
        HelloServer { port, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A user who has called the API once with a bearer token from `provider`
/// (which created them): the token and the `users/me/` answer.
pub fn api_user(
    provider: &oidc_provider::OidcProvider,
    app: &TestApp,
    sub: &str,
    email: &str,
) -> (String, serde_json::Value) {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert("email".into(), email.into());
    let token = provider.issue_access_token(claims);
    let response = app
        .client
        .get(app.url("/api/v1.0/users/me/"))
        .bearer_auth(&token)
        .send()
        .expect("GET users/me succeeds");
    assert_eq!(response.status(), 200, "the bearer user was not created");
    let me = response.json().expect("users/me answers JSON");
    (token, me)
}

#[cfg(test)]
mod tests {
    use super::LoggedRequest;

    #[test]
    fn host_log_lines_parse_and_other_lines_do_not() {
        let ok = LoggedRequest::parse("GET /api/v1.0/config/ identity 200 1.250ms sql=2 vars=19")
            .unwrap();
        assert_eq!(
            (ok.method.as_str(), ok.path.as_str(), ok.component.as_str()),
            ("GET", "/api/v1.0/config/", "identity")
        );
        assert_eq!((ok.status, ok.sql, ok.vars, ok.error), (200, 2, 19, None));
        assert!((ok.duration_ms - 1.25).abs() < 1e-9);
        let failed = LoggedRequest::parse(
            "POST /x rooms 503 10.000ms sql=0 vars=0 error: no free instance of `rooms` within 10.0 s",
        )
        .unwrap();
        assert_eq!(failed.status, 503);
        assert_eq!(
            failed.error.as_deref(),
            Some("no free instance of `rooms` within 10.0 s")
        );
        for other in [
            "route /api/v1.0/... -> identity",
            "meet-host listening on http://127.0.0.1:1",
            "GET /x - 404 1.0ms",
            "thread 'main' panicked at src/lib.rs:1:1:",
        ] {
            assert!(LoggedRequest::parse(other).is_none(), "{other}");
        }
    }
}
