//! The host as an operator meets it: migrations, the outbound allow-list,
//! and clear failures on a broken manifest.

use std::path::Path;
use std::process::Command;

use meet_e2e::{host_binary, repo_root, spawn_app_with, start_host, AppOptions, HelloServer};
use serde_json::Value;

fn schema(db: &rusqlite::Connection) -> Vec<(String, String)> {
    let mut statement = db
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn applied_versions(db: &rusqlite::Connection) -> Vec<String> {
    let mut statement = db
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn migrations_apply_once_and_a_restart_changes_nothing() {
    let first = spawn_app_with(AppOptions::default());
    let db_path = first.db_path.clone();
    let schema_before = schema(&first.db());
    let versions_before = applied_versions(&first.db());
    // Keep the database file past the first host's temporary directory.
    let kept = tempfile::tempdir().unwrap();
    let kept_db = kept.path().join("meet.db");
    drop(first.db());
    std::fs::copy(&db_path, &kept_db).unwrap();
    drop(first);

    let expected_files = std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .and_then(|e| e.to_str())
                == Some("sql")
        })
        .count();
    assert_eq!(versions_before.len(), expected_files);
    assert!(schema_before.iter().any(|(name, _)| name == "meet_room"));
    assert!(schema_before
        .iter()
        .any(|(name, _)| name == "unique_initiated_or_active_recording_per_room"));

    let second = start_host(&AppOptions {
        database: Some(kept_db.clone()),
        ..AppOptions::default()
    })
    .unwrap();

    assert_eq!(schema(&second.db()), schema_before);
    assert_eq!(applied_versions(&second.db()), versions_before);
    assert_eq!(second.get("/api/v1.0/config/").status(), 200);
}

/// A manifest serving the probe component with the `default` database,
/// allowed to reach one HTTP port plus `extra_hosts`.
fn probe_manifest(dir: &Path, allowed_port: u16, extra_hosts: &[&str]) -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--target",
                "wasm32-wasip2",
                "--release",
                "-p",
                "outbound-probe",
            ])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(status.success());
    });
    let wasm = repo_root().join("target/wasm32-wasip2/release/outbound_probe.wasm");
    let mut hosts = vec!["\"http://127.0.0.1:{{ allowed_port }}\"".to_string()];
    hosts.extend(extra_hosts.iter().map(|h| format!("{h:?}")));
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2

[application]
name = "probe"

[variables]
allowed_port = {{ default = "{allowed_port}" }}
smtp_host = {{ default = "127.0.0.1" }}
smtp_port = {{ default = "1" }}

[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = {wasm:?}
allowed_outbound_hosts = [{hosts}]
sqlite_databases = ["default"]
"#,
            wasm = wasm.display().to_string(),
            hosts = hosts.join(", "),
        ),
    )
    .unwrap();
    manifest
}

/// The probe app, with extra allowed hosts, variables and host flags.
fn probe_app(
    extra_hosts: &[&str],
    variables: &[(&str, &str)],
    host_args: &[&str],
) -> (meet_e2e::TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = probe_manifest(dir.path(), 1, extra_hosts);
    let mut options = AppOptions {
        manifest,
        ..AppOptions::default()
    }
    .host_args(host_args);
    for (name, value) in variables {
        options = options.variable(name, value);
    }
    (start_host(&options).unwrap(), dir)
}

#[test]
fn outbound_requests_reach_only_allowed_hosts() {
    let allowed = HelloServer::start();
    let forbidden = HelloServer::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = probe_manifest(dir.path(), allowed.port, &[]);
    let app = start_host(&AppOptions {
        manifest,
        ..AppOptions::default()
    })
    .unwrap();

    let ok = app.get(&format!("/probe/?url=http://127.0.0.1:{}/x", allowed.port));
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().unwrap();
    assert_eq!(body["status"], 200);
    assert_eq!(body["body"], "hello");
    assert_eq!(allowed.hits(), 1);

    let refused = app.get(&format!(
        "/probe/?url=http://127.0.0.1:{}/x",
        forbidden.port
    ));
    assert_eq!(refused.status(), 502);
    let body: Value = refused.json().unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("denied"),
        "{body}"
    );
    assert_eq!(forbidden.hits(), 0, "the forbidden host was contacted");
}

fn run_host_expecting_failure(manifest_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, manifest_text).unwrap();
    let output = Command::new(host_binary())
        .arg("up")
        .arg("--from")
        .arg(&manifest)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the host accepted a broken manifest"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_broken_manifest_stops_the_host_with_a_clear_message() {
    let syntax = run_host_expecting_failure("spin_manifest_version = 2\n[application\n");
    assert!(syntax.contains("spin.toml"), "{syntax}");

    let missing_wasm = run_host_expecting_failure(
        r#"spin_manifest_version = 2
[application]
name = "broken"
[[trigger.http]]
route = "/..."
component = "ghost"
[component.ghost]
source = "does/not/exist.wasm"
"#,
    );
    assert!(
        missing_wasm.contains("does/not/exist.wasm"),
        "{missing_wasm}"
    );
    assert!(missing_wasm.contains("ghost"), "{missing_wasm}");

    let unknown_component = run_host_expecting_failure(
        r#"spin_manifest_version = 2
[application]
name = "broken"
[[trigger.http]]
route = "/..."
component = "nobody"
"#,
    );
    assert!(unknown_component.contains("nobody"), "{unknown_component}");

    let undefined_variable = run_host_expecting_failure(&format!(
        r#"spin_manifest_version = 2
[application]
name = "broken"
[[trigger.http]]
route = "/..."
component = "identity"
[component.identity]
source = {:?}
[component.identity.variables]
language_code = "{{{{ no_such_variable }}}}"
"#,
        repo_root()
            .join("target/wasm32-wasip2/release/identity.wasm")
            .display()
            .to_string()
    ));
    assert!(
        undefined_variable.contains("no_such_variable"),
        "{undefined_variable}"
    );
}

#[test]
fn the_operator_merges_users_sharing_an_email() {
    use meet_e2e::oidc_provider::OidcProvider;
    let provider = OidcProvider::start();
    let app = spawn_app_with(AppOptions::default().variables(&provider.variables()));
    let mut ids = Vec::new();
    for (sub, email) in [
        ("old-sub", "Jane@Example.org"),
        ("new-sub", "jane@example.org"),
    ] {
        let (_, me) = meet_e2e::api_user(&provider, &app, sub, email);
        ids.push(me["id"].as_str().unwrap().to_string());
    }
    let merge = |extra: &[&str]| {
        let output = Command::new(host_binary())
            .arg("merge-duplicate-users")
            .arg("--from")
            .arg(repo_root().join("spin.toml"))
            .arg("--runtime-config-file")
            .arg(&app.runtime_config)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let count = || -> i64 {
        app.db()
            .query_row("SELECT count(*) FROM meet_user", [], |row| row.get(0))
            .unwrap()
    };

    let dry = merge(&["--dry-run"]);
    assert!(dry.contains("would merge jane@example.org"), "{dry}");
    assert_eq!(count(), 2);

    let done = merge(&[]);
    assert!(done.contains(&format!("keeping user {}", ids[1])), "{done}");
    assert_eq!(count(), 1);
    assert!(merge(&[]).contains("no users share an email"));
}

/// A loopback TCP server that greets each connection with one line and
/// counts the connections it accepted.
struct GreetingServer {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl GreetingServer {
    fn start() -> GreetingServer {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream.write_all(b"220 probe ready\r\n");
            }
        });
        GreetingServer { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn tcp_sockets_reach_only_listed_ip_addresses_and_names_are_not_resolved() {
    let allowed = GreetingServer::start();
    let unlisted = GreetingServer::start();
    let port = allowed.port.to_string();
    let by_name = format!("tcp://localhost:{}", unlisted.port);
    let (app, _dir) = probe_app(
        &["tcp://{{ smtp_host }}:{{ smtp_port }}", by_name.as_str()],
        &[("smtp_port", port.as_str())],
        &[],
    );
    let tcp = |addr: &str| -> (u16, Value) {
        let response = app.get(&format!("/probe/tcp?addr={addr}"));
        (response.status().as_u16(), response.json().unwrap())
    };

    let (status, body) = tcp(&format!("127.0.0.1:{}", allowed.port));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["greeting"], "220 probe ready");
    assert_eq!(allowed.accepted(), 1);

    let (status, body) = tcp(&format!("127.0.0.1:{}", unlisted.port));
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["kind"], "PermissionDenied", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{body}"
    );
    assert_eq!(unlisted.accepted(), 0, "the unlisted address was contacted");

    // A name is never looked up, even when a `tcp://<name>:<port>` entry lists it.
    for addr in [
        format!("localhost:{}", allowed.port),
        format!("localhost:{}", unlisted.port),
    ] {
        let (status, body) = tcp(&addr);
        assert_eq!(status, 502, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("failed to lookup address information"),
            "{body}"
        );
    }
    assert_eq!(allowed.accepted(), 1);
    assert_eq!(unlisted.accepted(), 0);
}

#[test]
fn a_guest_past_the_deadline_is_stopped_and_the_server_keeps_serving() {
    let (app, _dir) = probe_app(&[], &[], &["--request-timeout", "1s"]);
    let started = std::time::Instant::now();
    let response = app.get("/probe/spin");
    assert_eq!(response.status(), 504);
    let body: Value = response.json().unwrap();
    assert_eq!(body["detail"], "The request took too long.");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");

    let line = app.last_logged("GET", "/probe/spin");
    assert_eq!(line.status, 504);
    assert!(
        line.error.as_deref().unwrap().contains("deadline"),
        "{line:?}"
    );
    assert_eq!(
        app.logs().matches("/probe/spin").count(),
        1,
        "{}",
        app.logs()
    );
    assert!(!app.logs().contains("backtrace"), "{}", app.logs());

    let response = app
        .client
        .post(app.url("/probe/length"))
        .body("abc")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap()["length"], 3);
}

#[test]
fn request_bodies_over_the_limit_are_refused_with_413() {
    let (app, _dir) = probe_app(&[], &[], &["--max-request-body-bytes", "1000"]);
    let post = |body: reqwest::blocking::Body| {
        let response = app
            .client
            .post(app.url("/probe/length"))
            .body(body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    let (status, body) = post(vec![b'x'; 1000].into());
    assert_eq!((status, body["length"].as_u64()), (200, Some(1000)));

    let (status, body) = post(vec![b'x'; 1001].into());
    assert_eq!(status, 413);
    assert_eq!(body["detail"], "Request body too large.");

    // Chunked: no Content-Length, so the host counts as it reads.
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b'x'; 5000]));
    let (status, body) = post(chunked);
    assert_eq!(status, 413);
    assert_eq!(body["detail"], "Request body too large.");
    let small = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b'x'; 10]));
    assert_eq!(post(small).1["length"], 10);
    let refused = app
        .logged_requests()
        .into_iter()
        .filter(|line| line.status == 413)
        .count();
    assert_eq!(refused, 2);
}

#[test]
fn requests_wait_for_a_busy_instance_and_only_a_long_wait_gets_503() {
    // One instance: a request waits while another runs, then is served.
    let (app, _dir) = probe_app(
        &[],
        &[],
        &[
            "--max-instances",
            "1",
            "--request-timeout",
            "2s",
            "--queue-timeout",
            "5s",
        ],
    );
    let url = app.url("/probe/spin");
    let client = app.client.clone();
    let spinning = std::thread::spawn(move || client.get(url).send().unwrap().status());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let response = app
        .client
        .post(app.url("/probe/length"))
        .body("ab")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(spinning.join().unwrap(), 504);

    // Many at once on two instances: every one is served, none fails.
    let (app, _dir) = probe_app(&[], &[], &["--max-instances", "2"]);
    let app = std::sync::Arc::new(app);
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let app = app.clone();
            std::thread::spawn(move || {
                let response = app.client.get(app.url("/probe/sql?n=2")).send().unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // A wait past the queue timeout: 503 with Retry-After and JSON.
    let (app, _dir) = probe_app(
        &[],
        &[],
        &[
            "--max-instances",
            "1",
            "--request-timeout",
            "2s",
            "--queue-timeout",
            "200ms",
        ],
    );
    let url = app.url("/probe/spin");
    let client = app.client.clone();
    let spinning = std::thread::spawn(move || client.get(url).send().unwrap().status());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let response = app
        .client
        .post(app.url("/probe/length"))
        .body("ab")
        .send()
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().unwrap();
    assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
    let line = app.last_logged("POST", "/probe/length");
    assert_eq!(line.status, 503);
    assert!(line.error.unwrap().contains("no free instance"));
    assert_eq!(spinning.join().unwrap(), 504);
    let after = app
        .client
        .post(app.url("/probe/length"))
        .body("ab")
        .send()
        .unwrap();
    assert_eq!(after.status(), 200);
}

#[test]
fn each_request_logs_its_sql_statement_count() {
    let (app, _dir) = probe_app(&[], &[], &[]);
    for n in [3, 0, 5] {
        let response = app.get(&format!("/probe/sql?n={n}"));
        assert_eq!(response.status(), 200);
        response.text().unwrap();
        assert_eq!(app.sql_count("GET", "/probe/sql"), n);
    }
    let lines: Vec<u32> = app
        .logged_requests()
        .into_iter()
        .filter(|line| line.path == "/probe/sql")
        .map(|line| line.sql)
        .collect();
    assert_eq!(lines, [3, 0, 5]);
}

#[test]
fn sqlite_errors_carry_sqlite_s_message_as_in_spin() {
    let (app, _dir) = probe_app(&[], &[], &[]);
    let response = app.get("/probe/sql-errors");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    let unique = body["unique"].as_str().unwrap();
    assert!(
        unique.contains("Io") && unique.contains("\"UNIQUE constraint failed: probe_t.x\""),
        "{body}"
    );
    let raise = body["raise"].as_str().unwrap();
    assert!(
        raise.contains("Io") && raise.contains("\"y is not allowed\""),
        "{body}"
    );
}
