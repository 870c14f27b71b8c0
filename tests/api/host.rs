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

/// A manifest serving the outbound probe, allowed to reach one port only.
fn probe_manifest(dir: &Path, allowed_port: u16) -> std::path::PathBuf {
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
    let wasm = repo_root().join("target/wasm32-wasip2/release/outbound_probe.wasm");
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2

[application]
name = "probe"

[variables]
allowed_port = {{ default = "{allowed_port}" }}

[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = {wasm:?}
allowed_outbound_hosts = ["http://127.0.0.1:{{{{ allowed_port }}}}"]
"#,
            wasm = wasm.display().to_string()
        ),
    )
    .unwrap();
    manifest
}

#[test]
fn outbound_requests_reach_only_allowed_hosts() {
    let allowed = HelloServer::start();
    let forbidden = HelloServer::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = probe_manifest(dir.path(), allowed.port);
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
