//! `cargo run --release -p meet-e2e --bin meet-load [-- --connections 1000] [--seconds 10]`
//!
//! Serves the app on the project's host with a fresh database and holds many
//! concurrent keep-alive connections (1,000 by default) on
//! `GET /api/v1.0/rooms/<slug>/` (a public room, anonymous caller, LiveKit
//! token minted) for a fixed time, printing requests/s, p50, p99, the answers
//! that were not 2xx and the connection errors. Loopback only, bounded in
//! connections and time.

use std::time::Duration;

use meet_e2e::load;
use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::{spawn_app_with, AppOptions};
use serde_json::json;

const ROOM_PATH: &str = "/api/v1.0/rooms/load-room/?username=Guest";

fn main() -> anyhow::Result<()> {
    let mut connections = 1000;
    let mut seconds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{arg} takes a value"))?;
        match arg.as_str() {
            "--connections" => connections = value.parse()?,
            "--seconds" => seconds = value.parse()?,
            _ => anyhow::bail!("unknown argument {arg}; use --connections N --seconds S"),
        }
    }
    anyhow::ensure!(
        (1..=load::MAX_CONNECTIONS).contains(&connections),
        "--connections is between 1 and {}",
        load::MAX_CONNECTIONS
    );
    anyhow::ensure!(
        (1..=load::MAX_DURATION.as_secs()).contains(&seconds),
        "--seconds is between 1 and {}",
        load::MAX_DURATION.as_secs()
    );
    // Each connection is a descriptor here and one in the host (which
    // inherits the limit), plus the host's database and modules.
    let limit = load::raise_open_files_limit(connections as u64 + 1024)?;
    anyhow::ensure!(
        limit >= connections as u64 + 256,
        "the open files limit is {limit}, too low for {connections} connections"
    );

    let provider = OidcProvider::start();
    let app = spawn_app_with(
        AppOptions::default()
            .variables(&provider.variables())
            .variable("livekit_api_key", "load-key")
            .variable(
                "livekit_api_secret",
                "a-load-secret-of-at-least-32-characters",
            )
            .variable("livekit_api_url", "wss://livekit.example.org"),
    );
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("load-user"));
    claims.insert("email".into(), json!("load@example.org"));
    let token = provider.issue_access_token(claims);
    let created = app
        .client
        .post(app.url("/api/v1.0/rooms/"))
        .bearer_auth(&token)
        .json(&json!({"name": "load room"}))
        .send()?;
    anyhow::ensure!(
        created.status() == 201,
        "creating the room: {}",
        created.status()
    );

    let address = app.address.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // A short warm-up on few connections: compiled code and caches ready.
    let room = load::LoadRequest::get(ROOM_PATH, &[]);
    runtime.block_on(load::run(&address, &room, 32, Duration::from_secs(1), 200))?;
    let report = runtime.block_on(load::generate(
        &address,
        &room,
        connections,
        Duration::from_secs(seconds),
    ))?;
    println!(
        "GET /api/v1.0/rooms/<slug>/ at {connections} connections for {seconds} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} answers)",
        report.requests_per_second(),
        report.percentile(0.50).as_secs_f64() * 1000.0,
        report.percentile(0.99).as_secs_f64() * 1000.0,
        report.requests,
    );
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "non-2xx answers: {} (by status: {}); connection errors: {}{}",
        report.non_2xx(),
        statuses.join(", "),
        report.connection_errors,
        report
            .first_error
            .as_deref()
            .map(|error| format!(" (first: {error})"))
            .unwrap_or_default()
    );
    Ok(())
}
