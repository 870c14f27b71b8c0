//! `cargo run --release -p meet-e2e --bin meet-bench [-- SECONDS]`
//!
//! Serves the app on the project's host with a fresh database and loads the
//! endpoints that matter at 32 concurrent connections, printing requests/s
//! and latency percentiles, plus the time to instantiate a component.

use std::time::Duration;

use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::{load, repo_root, spawn_app_with, AppOptions};
use serde_json::json;

const CONNECTIONS: usize = 32;
const ROOMS_OF_THE_BUSY_USER: usize = 1000;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse())
        .transpose()?
        .unwrap_or(10);
    let provider = OidcProvider::start();
    let app = spawn_app_with(
        AppOptions::default()
            .variables(&provider.variables())
            .variable("oidc_bearer_cache_seconds", "3600")
            .variable("livekit_api_key", "bench-key")
            .variable(
                "livekit_api_secret",
                "a-bench-secret-of-at-least-32-characters",
            )
            .variable("livekit_api_url", "wss://livekit.example.org"),
    );
    let address = app.address.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    for component in ["identity", "rooms"] {
        let instantiation =
            meet_host::measure_instantiation(&repo_root().join("spin.toml"), None, component, 200)?;
        println!(
            "instantiate {component} component: {:.3} ms (mean of 200)",
            instantiation.as_secs_f64() * 1000.0
        );
    }

    // A user with many rooms, and one public room to join.
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("bench-user"));
    claims.insert("email".into(), json!("bench@example.org"));
    let token = provider.issue_access_token(claims);
    let client = reqwest::blocking::Client::new();
    for n in 0..ROOMS_OF_THE_BUSY_USER {
        let response = client
            .post(app.url("/api/v1.0/rooms/"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench room {n:04}")}))
            .send()?;
        anyhow::ensure!(
            response.status() == 201,
            "creating a room: {}",
            response.status()
        );
    }
    let bearer = vec![("authorization".to_string(), format!("Bearer {token}"))];

    let measure = |label: &str, path: &str, headers: &[(String, String)]| -> anyhow::Result<()> {
        // Warm-up, so that the figures do not include first-use costs.
        runtime.block_on(load::run(
            &address,
            path,
            headers,
            CONNECTIONS,
            Duration::from_secs(1),
            200,
        ))?;
        let report = runtime.block_on(load::run(
            &address,
            path,
            headers,
            CONNECTIONS,
            Duration::from_secs(seconds),
            200,
        ))?;
        println!(
            "{label}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} requests, {CONNECTIONS} connections, {seconds} s)",
            report.requests_per_second(),
            report.percentile(0.50).as_secs_f64() * 1000.0,
            report.percentile(0.99).as_secs_f64() * 1000.0,
            report.requests,
        );
        Ok(())
    };
    measure("GET /api/v1.0/config/", "/api/v1.0/config/", &[])?;
    measure(
        "GET /api/v1.0/rooms/<slug>/ (public room, anonymous, token minted)",
        "/api/v1.0/rooms/bench-room-0042/?username=Guest",
        &[],
    )?;
    measure(
        "GET /api/v1.0/rooms/ (user with 1,000 rooms, bearer, first page)",
        "/api/v1.0/rooms/",
        &bearer,
    )?;
    Ok(())
}
