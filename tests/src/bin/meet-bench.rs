//! `cargo run --release -p meet-e2e --bin meet-bench [-- SECONDS]`
//!
//! Serves the app on the project's host with a fresh database and loads the
//! endpoints that matter at 32 concurrent connections, printing requests/s
//! and latency percentiles, plus the time to instantiate a component.

use std::time::Duration;

use meet_e2e::{load, repo_root, spawn_app};

const CONNECTIONS: usize = 32;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse())
        .transpose()?
        .unwrap_or(10);
    let app = spawn_app();
    let address = app.address.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    let instantiation =
        meet_host::measure_instantiation(&repo_root().join("spin.toml"), None, "identity", 200)?;
    println!(
        "instantiate identity component: {:.3} ms (mean of 200)",
        instantiation.as_secs_f64() * 1000.0
    );

    let measure = |label: &str, path: &str| -> anyhow::Result<()> {
        // Warm-up, so that the figures do not include first-use costs.
        runtime.block_on(load::run(
            &address,
            path,
            CONNECTIONS,
            Duration::from_secs(1),
            200,
        ))?;
        let report = runtime.block_on(load::run(
            &address,
            path,
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
    measure("GET /api/v1.0/config/", "/api/v1.0/config/")?;
    Ok(())
}
