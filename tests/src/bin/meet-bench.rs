//! `cargo run --release -p meet-e2e --bin meet-bench [-- SECONDS] [--libsql-delay-ms 1,5] [--targets-only]`
//!
//! Serves the app on the project's host with a fresh database, together with
//! the baseline component (`tests/baseline`: a constant answer, one indexed
//! `SELECT`, one indexed `UPDATE`), and loads each endpoint at 32 concurrent connections, printing
//! requests/s and latency percentiles, each app endpoint next to its
//! baseline, plus the time to instantiate a component.
//!
//! With `--libsql-delay-ms`, the database is instead a fake libSQL server
//! (Hrana over HTTP on loopback) that waits the given delay on every HTTP
//! request, and each hot path is printed with its statements per request.
//!
//! With `--targets-only`, only the loads that have a target are run (the
//! baselines, `config/`, the room retrieve and the lobby poll), on a small
//! seed: a quick check while working on their cost.

use std::time::Duration;

use bytes::Bytes;
use meet_e2e::hrana_server::{HranaServer, HranaStats};
use meet_e2e::livekit_server::FakeLiveKit;
use meet_e2e::load::{self, BenchHost, LoadBody, LoadReport, LoadRequest};
use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::repo_root;
use meet_e2e::summary_service::SummaryService;
use serde_json::json;

const CONNECTIONS: usize = 32;
const ROOMS_OF_THE_BUSY_USER: usize = 1000;
/// Recordings the bench user owns, for `GET /api/v1.0/recordings/`.
const RECORDINGS_OF_THE_BUSY_USER: usize = 1000;
/// Fewer rooms over libSQL: each creation is several round trips.
const ROOMS_OVER_LIBSQL: usize = 100;
const ROOM_SLUG: &str = "bench-room-0042";
/// A restricted room, where anonymous guests wait in the lobby.
const LOBBY_SLUG: &str = "bench-lobby";
const LIBSQL_TOKEN: &str = "bench-libsql-token";
const LIVEKIT_KEY: &str = "bench-key";
const LIVEKIT_SECRET: &str = "a-bench-secret-of-at-least-32-characters";
const STORAGE_HOOK_TOKEN: &str = "bench-storage-hook-token";
const SUMMARY_TOKEN: &str = "bench-summary-token";
/// Stopped transcripts waiting for their file, one per storage-hook
/// request: more than the hook can save in a bench's time.
const RECORDINGS_FOR_THE_HOOK: usize = 30_000;

struct Options {
    seconds: u64,
    libsql_delays_ms: Option<Vec<u64>>,
    targets_only: bool,
}

/// Rooms seeded with `--targets-only`: enough for [`ROOM_SLUG`].
const ROOMS_FOR_THE_TARGETS: usize = 50;

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 10,
        libsql_delays_ms: None,
        targets_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--libsql-delay-ms" {
            let list = args
                .next()
                .ok_or_else(|| anyhow::anyhow!("--libsql-delay-ms takes a list, e.g. 1,5"))?;
            let delays = list
                .split(',')
                .map(|d| d.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()?;
            anyhow::ensure!(
                delays.iter().all(|d| *d <= 1000),
                "delays are at most 1000 ms"
            );
            options.libsql_delays_ms = Some(delays);
        } else if arg == "--targets-only" {
            options.targets_only = true;
        } else {
            options.seconds = arg.parse()?;
            anyhow::ensure!(
                (1..=load::MAX_DURATION.as_secs()).contains(&options.seconds),
                "SECONDS is between 1 and {}",
                load::MAX_DURATION.as_secs()
            );
        }
    }
    Ok(options)
}

/// One load's figures, and what the libSQL server served meanwhile.
struct Measured {
    report: LoadReport,
    served: Option<HranaStats>,
}

struct Bench<'a> {
    host: &'a BenchHost,
    runtime: tokio::runtime::Runtime,
    seconds: u64,
    libsql: Option<&'a HranaServer>,
}

impl Bench<'_> {
    /// `GET path` with `headers`, every answer a 200.
    fn measure(&self, path: &str, headers: &[(String, String)]) -> anyhow::Result<Measured> {
        self.measure_request(&LoadRequest::get(path, headers))
    }

    fn measure_request(&self, request: &LoadRequest) -> anyhow::Result<Measured> {
        let address = &self.host.address;
        // Warm-up, so that the figures do not include first-use costs.
        self.runtime.block_on(load::run(
            address,
            request,
            CONNECTIONS,
            Duration::from_secs(1),
            200,
        ))?;
        let before = self.libsql.map(HranaServer::stats);
        let report = self.runtime.block_on(load::run(
            address,
            request,
            CONNECTIONS,
            Duration::from_secs(self.seconds),
            200,
        ))?;
        let served = self
            .libsql
            .map(HranaServer::stats)
            .zip(before)
            .map(|(after, before)| after - before);
        Ok(Measured { report, served })
    }
}

/// Rounds in which an endpoint with a target and its baseline are loaded
/// one after the other: a drift of the machine (other tenants of the host)
/// then hits both alike, and the median round is the one reported.
const ROUNDS: usize = 3;

/// The figures of [`ROUNDS`] alternating loads of a baseline and an endpoint.
struct Rounds {
    baseline: Vec<Measured>,
    endpoint: Vec<Measured>,
}

impl Bench<'_> {
    fn alternate(&self, baseline: &LoadRequest, endpoint: &LoadRequest) -> anyhow::Result<Rounds> {
        let mut rounds = Rounds {
            baseline: Vec::new(),
            endpoint: Vec::new(),
        };
        for _ in 0..ROUNDS {
            rounds.baseline.push(self.measure_request(baseline)?);
            rounds.endpoint.push(self.measure_request(endpoint)?);
        }
        Ok(rounds)
    }
}

/// Prints the round whose requests/s ratio is the median, against its
/// baseline (see [`compare`]), and every round's ratio; returns that
/// round's `(baseline, endpoint)` figures.
fn compare_rounds(
    label: &str,
    mut rounds: Rounds,
    (baseline_name, baseline_label): (&str, &str),
    min_throughput_ratio: f64,
    max_p99_ratio: Option<f64>,
) -> (Measured, Measured) {
    let ratios: Vec<f64> = rounds
        .baseline
        .iter()
        .zip(&rounds.endpoint)
        .map(|(baseline, endpoint)| {
            endpoint.report.requests_per_second() / baseline.report.requests_per_second()
        })
        .collect();
    let mut order: Vec<usize> = (0..ratios.len()).collect();
    order.sort_by(|a, b| ratios[*a].total_cmp(&ratios[*b]));
    let median = order[order.len() / 2];
    let baseline = rounds.baseline.swap_remove(median);
    let endpoint = rounds.endpoint.swap_remove(median);
    println!("{}", figures(baseline_label, &baseline));
    compare(
        label,
        &endpoint,
        baseline_name,
        &baseline,
        min_throughput_ratio,
        max_p99_ratio,
    );
    let listed: Vec<String> = ratios
        .iter()
        .map(|r| format!("{:.0}%", r * 100.0))
        .collect();
    println!(
        "    ({} alternating rounds, requests/s ratios {}; the median round is shown)",
        ratios.len(),
        listed.join(", ")
    );
    (baseline, endpoint)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn figures(label: &str, measured: &Measured) -> String {
    let report = &measured.report;
    let mut line = format!(
        "{label}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        report.requests_per_second(),
        ms(report.percentile(0.50)),
        ms(report.percentile(0.99)),
    );
    if let Some(served) = measured.served {
        let per_request = |n: usize| n as f64 / report.requests.max(1) as f64;
        line.push_str(&format!(
            ", {:.2} statements/request, {:.2} HTTP round trips/request",
            per_request(served.statements),
            per_request(served.http_requests)
        ));
    }
    line
}

/// The app endpoint against its baseline: the ratio of requests/s and of
/// p99, and whether the issue's targets hold (printed, never enforced).
fn compare(
    label: &str,
    measured: &Measured,
    baseline_name: &str,
    baseline: &Measured,
    min_throughput_ratio: f64,
    max_p99_ratio: Option<f64>,
) {
    let throughput = measured.report.requests_per_second() / baseline.report.requests_per_second();
    let p99 = measured.report.percentile(0.99).as_secs_f64()
        / baseline.report.percentile(0.99).as_secs_f64().max(1e-9);
    let mut targets = vec![format!(
        "requests/s ≥ {:.0}%: {}",
        min_throughput_ratio * 100.0,
        if throughput >= min_throughput_ratio {
            "met"
        } else {
            "MISSED"
        }
    )];
    if let Some(max_p99) = max_p99_ratio {
        targets.push(format!(
            "p99 ≤ {max_p99:.1}×: {}",
            if p99 <= max_p99 { "met" } else { "MISSED" }
        ));
    }
    println!(
        "{}\n    = {:.0}% of the {baseline_name} baseline's requests/s, p99 {:.2}× its p99 (target {})",
        figures(label, measured),
        throughput * 100.0,
        p99,
        targets.join(", ")
    );
}

/// The app's variables: the provider, a fake LiveKit (the lobby notifies
/// it), a fake summary service (the storage hook notifies it), and a
/// request-entry throttle high enough never to answer 429 in a bench.
fn app_variables(
    provider: &OidcProvider,
    livekit: &FakeLiveKit,
    summary: &SummaryService,
) -> Vec<(String, String)> {
    let mut variables = provider.variables();
    for (name, value) in [
        ("oidc_bearer_cache_seconds", "3600".to_string()),
        ("livekit_api_key", LIVEKIT_KEY.to_string()),
        ("livekit_api_secret", LIVEKIT_SECRET.to_string()),
        ("livekit_api_url", livekit.ws_url()),
        ("livekit_api_origin", livekit.url()),
        (
            "request_entry_throttle_rates",
            "1000000000/hour".to_string(),
        ),
        ("lobby_waiting_timeout", "60".to_string()),
        ("recording_storage_event_enable", "true".to_string()),
        (
            "recording_storage_event_token",
            STORAGE_HOOK_TOKEN.to_string(),
        ),
        ("summary_service_endpoint", summary.endpoint()),
        ("summary_service_api_token", SUMMARY_TOKEN.to_string()),
        ("summary_service_origin", summary.origin()),
    ] {
        variables.push((name.to_string(), value));
    }
    variables
}

/// Creates `count` rooms owned by the bearer of `token` ("bench room 0000"…)
/// and the restricted room of the lobby poll.
fn seed_rooms(host: &BenchHost, token: &str, count: usize) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    let lobby = json!({"name": LOBBY_SLUG, "access_level": "restricted"});
    let names = (0..count).map(|n| json!({"name": format!("bench room {n:04}")}));
    for body in names.chain([lobby]) {
        let response = client
            .post(host.url("/api/v1.0/rooms/"))
            .bearer_auth(token)
            .json(&body)
            .send()?;
        if response.status() != 201 {
            let logs = host.logs();
            let tail: Vec<&str> = logs.lines().rev().take(20).collect();
            anyhow::bail!(
                "creating a room: {} {}\nhost log (last lines, newest first):\n{}",
                response.status(),
                response.text().unwrap_or_default(),
                tail.join("\n")
            );
        }
    }
    Ok(())
}

/// Recordings to seed for the bench user, straight into the database file.
struct SeededRecordings {
    count: usize,
    /// `saved` (for the list) or `stopped` (waiting for the storage hook).
    status: &'static str,
    mode: &'static str,
    /// The third group of the ids: recording `n` is
    /// `00000000-0000-4000-<group>-<n>`, its access the next group up.
    group: u16,
}

fn seeded_id(group: u16, n: u64) -> String {
    format!("00000000-0000-4000-{group:04x}-{n:012}")
}

/// Gives the bench user the recordings of `seeded` on their first room,
/// each with its owner access, one second apart.
fn seed_recordings(database: &std::path::Path, seeded: &SeededRecordings) -> anyhow::Result<()> {
    let mut db = rusqlite::Connection::open(database)?;
    let transaction = db.transaction()?;
    let (user, room): (String, String) = transaction.query_row(
        "SELECT a.user_id, a.resource_id FROM meet_resource_access a \
         JOIN meet_user u ON u.id = a.user_id WHERE u.sub = 'bench-user' LIMIT 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    for n in 0..seeded.count as u64 {
        let id = seeded_id(seeded.group, n);
        let access = seeded_id(seeded.group + 0x1000, n);
        let at = format!(
            "2026-01-01T{:02}:{:02}:{:02}.000000Z",
            n / 3600 % 24,
            n / 60 % 60,
            n % 60
        );
        transaction.execute(
            "INSERT INTO meet_recording (id, created_at, updated_at, room_id, status, mode, worker_id) \
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?1)",
            rusqlite::params![id, at, room, seeded.status, seeded.mode],
        )?;
        transaction.execute(
            "INSERT INTO meet_recording_access (id, created_at, updated_at, recording_id, user_id, team, role) \
             VALUES (?1, ?2, ?2, ?3, ?4, '', 'owner')",
            rusqlite::params![access, at, id, user],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

/// The busy user's saved recordings, for `GET /api/v1.0/recordings/`.
const LISTED_RECORDINGS: SeededRecordings = SeededRecordings {
    count: RECORDINGS_OF_THE_BUSY_USER,
    status: "saved",
    mode: "screen_recording",
    group: 0xa000,
};

/// Stopped transcripts waiting for their file, one per storage-hook request.
const HOOK_RECORDINGS: SeededRecordings = SeededRecordings {
    count: RECORDINGS_FOR_THE_HOOK,
    status: "stopped",
    mode: "transcript",
    group: 0xc000,
};

fn hook_recording_id(n: u64) -> String {
    seeded_id(HOOK_RECORDINGS.group, n)
}

/// MinIO's event for the file of the `n`-th seeded transcript.
fn storage_event(n: u64) -> Bytes {
    let key = format!("recordings%2F{}.ogg", hook_recording_id(n));
    let event = json!({"Records": [{"s3": {
        "bucket": {"name": "meet-media-storage"},
        "object": {"key": key, "contentType": "audio/ogg"},
    }}]});
    Bytes::from(event.to_string())
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let provider = OidcProvider::start();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("bench-user"));
    claims.insert("email".into(), json!("bench@example.org"));
    let token = provider.issue_access_token(claims);
    let bearer = vec![("authorization".to_string(), format!("Bearer {token}"))];

    let dir = tempfile::tempdir()?;
    let manifest = load::manifest_with_baseline(dir.path())?;
    let libsql = match &options.libsql_delays_ms {
        Some(_) => Some(HranaServer::start(LIBSQL_TOKEN, Duration::ZERO)?),
        None => None,
    };
    let runtime_config = match &libsql {
        Some(server) => load::libsql_runtime_config(server.url(), server.token()),
        None => load::file_runtime_config(&dir.path().join("meet.db")),
    };
    let livekit = FakeLiveKit::start(LIVEKIT_KEY, LIVEKIT_SECRET);
    let summary = SummaryService::start(SUMMARY_TOKEN);
    let variables = app_variables(&provider, &livekit, &summary);
    let host = BenchHost::start(&manifest, &runtime_config, &variables)?;
    let bench = Bench {
        host: &host,
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
        seconds: options.seconds,
        libsql: libsql.as_ref(),
    };
    let guest = vec![(
        "cookie".to_string(),
        "lobbyParticipantId=0123456789abcdef0123456789abcdef".to_string(),
    )];
    let paths = Paths {
        select: format!("/baseline/select?slug={ROOM_SLUG}"),
        write: LoadRequest::post_json(
            &format!("/baseline/write?slug={ROOM_SLUG}"),
            &[],
            LoadBody::Empty,
        ),
        room: format!("/api/v1.0/rooms/{ROOM_SLUG}/?username=Guest"),
        poll: LoadRequest::post_json(
            &format!("/api/v1.0/rooms/{LOBBY_SLUG}/request-entry/"),
            &guest,
            LoadBody::Fixed(Bytes::from_static(br#"{"username": "Guest"}"#)),
        ),
        bearer,
    };
    match (&libsql, &options.libsql_delays_ms) {
        (Some(server), Some(delays)) => {
            seed_rooms(&host, &token, ROOMS_OVER_LIBSQL)?;
            libsql_bench(&bench, server, delays, &paths)
        }
        _ if options.targets_only => {
            seed_rooms(&host, &token, ROOMS_FOR_THE_TARGETS)?;
            file_bench_targets(&bench, &paths).map(|_| ())
        }
        _ => {
            seed_rooms(&host, &token, ROOMS_OF_THE_BUSY_USER)?;
            seed_recordings(&dir.path().join("meet.db"), &LISTED_RECORDINGS)?;
            file_bench(&bench, &paths, &dir.path().join("meet.db"))
        }
    }
}

const CONSTANT: &str = "/baseline/constant";
const CONFIG: &str = "/api/v1.0/config/";
const ROOMS: &str = "/api/v1.0/rooms/";
const RECORDINGS: &str = "/api/v1.0/recordings/";

struct Paths {
    select: String,
    /// The one-write baseline, the poll's yardstick.
    write: LoadRequest,
    room: String,
    /// A waiting guest's poll (its entry exists after the warm-up).
    poll: LoadRequest,
    bearer: Vec<(String, String)>,
}

/// The loads with a target, each against its baseline; returns the select
/// baseline's figures for the loads that follow.
fn file_bench_targets(bench: &Bench, paths: &Paths) -> anyhow::Result<Measured> {
    for component in ["identity", "rooms"] {
        let instantiation =
            meet_host::measure_instantiation(&repo_root().join("spin.toml"), None, component, 200)?;
        println!(
            "instantiate {component} component: {:.3} ms (mean of 200)",
            ms(instantiation)
        );
    }
    println!(
        "loads: {CONNECTIONS} connections, {} s each after a 1 s warm-up, local SQLite file",
        bench.seconds
    );
    compare_rounds(
        "GET /api/v1.0/config/",
        bench.alternate(
            &LoadRequest::get(CONSTANT, &[]),
            &LoadRequest::get(CONFIG, &[]),
        )?,
        ("constant", "baseline GET /baseline/constant"),
        0.9,
        Some(1.5),
    );
    let (select, _) = compare_rounds(
        "GET /api/v1.0/rooms/<slug>/ (public room, anonymous, token minted)",
        bench.alternate(
            &LoadRequest::get(&paths.select, &[]),
            &LoadRequest::get(&paths.room, &[]),
        )?,
        (
            "select",
            "baseline GET /baseline/select (one indexed SELECT)",
        ),
        0.9,
        None,
    );
    compare_rounds(
        "POST /api/v1.0/rooms/<slug>/request-entry/ (waiting guest's poll, cookie)",
        bench.alternate(&paths.write, &paths.poll)?,
        (
            "one-write",
            "baseline POST /baseline/write (one indexed UPDATE)",
        ),
        0.9,
        None,
    );
    let (_, poll) = compare_rounds(
        "POST /api/v1.0/rooms/<slug>/request-entry/ (waiting guest's poll, cookie)",
        bench.alternate(&LoadRequest::get(&paths.room, &[]), &paths.poll)?,
        (
            "room retrieve",
            "GET /api/v1.0/rooms/<slug>/ (again, as the poll's yardstick)",
        ),
        0.8,
        None,
    );
    println!(
        "    = {:.0}% of the select baseline's requests/s (target ≥ 90%: {})",
        poll.report.requests_per_second() / select.report.requests_per_second() * 100.0,
        if poll.report.requests_per_second() >= 0.9 * select.report.requests_per_second() {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(select)
}

/// The app on a local SQLite file: each endpoint against its baseline.
fn file_bench(bench: &Bench, paths: &Paths, database: &std::path::Path) -> anyhow::Result<()> {
    let select = file_bench_targets(bench, paths)?;
    let measured = bench.measure(ROOMS, &paths.bearer)?;
    println!(
        "{}\n    = {:.0}% of the select baseline's requests/s (no target)",
        figures(
            "GET /api/v1.0/rooms/ (user with 1,000 rooms, bearer, first page)",
            &measured
        ),
        measured.report.requests_per_second() / select.report.requests_per_second() * 100.0
    );
    let measured = bench.measure(RECORDINGS, &paths.bearer)?;
    println!(
        "{}\n    = {:.0}% of the select baseline's requests/s (no target)",
        figures(
            "GET /api/v1.0/recordings/ (user with 1,000 recordings, bearer, first page)",
            &measured
        ),
        measured.report.requests_per_second() / select.report.requests_per_second() * 100.0
    );
    // Seeded only now, so that the recordings list above is the busy
    // user's 1,000.
    seed_recordings(database, &HOOK_RECORDINGS)?;
    let hook_bearer = vec![(
        "authorization".to_string(),
        format!("Bearer {STORAGE_HOOK_TOKEN}"),
    )];
    let hook = LoadRequest::post_json(
        "/api/v1.0/recordings/storage-hook/",
        &hook_bearer,
        LoadBody::per_request(storage_event),
    );
    let measured = bench.measure_request(&hook)?;
    println!(
        "{}\n    = {:.0}% of the select baseline's requests/s (no target)",
        figures(
            "POST /api/v1.0/recordings/storage-hook/ (a transcript saved, summary service notified)",
            &measured
        ),
        measured.report.requests_per_second() / select.report.requests_per_second() * 100.0
    );
    Ok(())
}

/// The hot paths on the fake libSQL server, once per delay.
fn libsql_bench(
    bench: &Bench,
    server: &HranaServer,
    delays_ms: &[u64],
    paths: &Paths,
) -> anyhow::Result<()> {
    let endpoints = [
        (
            "baseline GET /baseline/constant",
            LoadRequest::get(CONSTANT, &[]),
        ),
        (
            "baseline GET /baseline/select",
            LoadRequest::get(&paths.select, &[]),
        ),
        ("GET /api/v1.0/config/", LoadRequest::get(CONFIG, &[])),
        (
            "GET /api/v1.0/rooms/<slug>/ (anonymous)",
            LoadRequest::get(&paths.room, &[]),
        ),
        (
            "GET /api/v1.0/rooms/<slug>/ (owner, bearer)",
            LoadRequest::get(&paths.room, &paths.bearer),
        ),
        (
            "POST /api/v1.0/rooms/<slug>/request-entry/ (waiting guest's poll)",
            paths.poll.clone(),
        ),
        (
            "GET /api/v1.0/rooms/ (user with 100 rooms, first page)",
            LoadRequest::get(ROOMS, &paths.bearer),
        ),
    ];
    for delay in delays_ms {
        server.set_delay(Duration::from_millis(*delay));
        println!(
            "libSQL: fake Hrana server on loopback, {delay} ms added to each HTTP request; {CONNECTIONS} connections, {} s each after a 1 s warm-up",
            bench.seconds
        );
        for (label, request) in &endpoints {
            let measured = bench.measure_request(request)?;
            println!("  {}", figures(label, &measured));
        }
    }
    Ok(())
}
