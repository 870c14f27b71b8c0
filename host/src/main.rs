//! `meet-host up` / `meet-host migrate`, with `spin up`'s flags.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use meet_host::server::ServeOptions;
use meet_host::state::OutboundTimeouts;
use meet_host::{migrate, App, LoadOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "meet-host",
    version,
    about = "A small Spin-compatible host for the Meet components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct AppArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
    /// Runtime configuration (SQLite databases).
    #[arg(long = "runtime-config-file")]
    runtime_config_file: Option<PathBuf>,
}

impl AppArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions::new(&self.from, self.runtime_config_file.as_deref())
    }
}

/// Bounds of `up` (durations: `30`, `1.5` or `1.5s` seconds, `500ms`).
#[derive(clap::Args)]
struct LimitArgs {
    /// Component instances alive at once, all components together.
    #[arg(long, default_value_t = 256)]
    max_instances: u32,
    /// Instances of one component alive at once (default: --max-instances).
    #[arg(long)]
    max_instances_per_component: Option<u32>,
    /// Requests that may wait for a free instance; more get 503 at once.
    #[arg(long, default_value_t = 4096)]
    max_queued_requests: usize,
    /// How long a request waits for a free instance before 503.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    queue_timeout: Duration,
    /// Deadline of a request: past it the guest is stopped and 504 answered.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Largest request body; a larger one is answered 413.
    #[arg(long, default_value_t = 1 << 20)]
    max_request_body_bytes: u64,
    /// Time a client has to send a request head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// Outbound HTTP connect timeout, when the guest sets none.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    outbound_connect_timeout: Duration,
    /// Outbound HTTP time to the first response byte, when the guest sets none.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    outbound_first_byte_timeout: Duration,
    /// Outbound HTTP time between response body chunks, when the guest sets none.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    outbound_between_bytes_timeout: Duration,
    /// Keep idle SQLite connections between requests (faster; real Spin
    /// opens a fresh connection for every instance, as this host does by
    /// default).
    #[arg(long)]
    reuse_sqlite_connections: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration (e.g. 30, 1.5s, 500ms)");
    let (number, scale) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| invalid())
}

impl LimitArgs {
    fn apply(&self, options: &mut LoadOptions) -> ServeOptions {
        options.limits.max_instances = self.max_instances;
        options.limits.max_instances_per_component = self
            .max_instances_per_component
            .unwrap_or(self.max_instances);
        options.reuse_sqlite_connections = self.reuse_sqlite_connections;
        options.outbound_timeouts = OutboundTimeouts {
            connect: self.outbound_connect_timeout,
            first_byte: self.outbound_first_byte_timeout,
            between_bytes: self.outbound_between_bytes_timeout,
        };
        ServeOptions {
            max_body_bytes: self.max_request_body_bytes,
            request_timeout: self.request_timeout,
            queue_timeout: self.queue_timeout,
            max_queued: self.max_queued_requests,
            header_read_timeout: self.header_read_timeout,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the application.
    Up {
        #[command(flatten)]
        app: AppArgs,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run each component's build command, like `spin build`.
    Build {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Apply pending migrations to the `default` database and exit.
    Migrate {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Merge users who share an email (case-insensitive) into the most
    /// recent one, moving their room and recording accesses.
    MergeDuplicateUsers {
        #[command(flatten)]
        app: AppArgs,
        /// Only report what would be merged.
        #[arg(long)]
        dry_run: bool,
        /// Only emails containing this text.
        #[arg(long)]
        email_filter: Option<String>,
    },
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build { app } => meet_host::build(&app.from),
        Command::Migrate { app } => {
            migrate(&app.options())?;
            Ok(())
        }
        Command::MergeDuplicateUsers {
            app,
            dry_run,
            email_filter,
        } => {
            meet_host::admin::merge_duplicates(&app.options(), email_filter.as_deref(), dry_run)?;
            Ok(())
        }
        Command::Up {
            app,
            listen,
            limits,
        } => {
            let mut options = app.options();
            let serve_options = limits.apply(&mut options);
            migrate(&options)?;
            let app = Arc::new(App::load(&options)?);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the tokio runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                let local = listener.local_addr()?;
                for route in app.router.routes() {
                    eprintln!("route {} -> {}", route.raw, route.component);
                }
                println!("meet-host listening on http://{local}");
                std::io::stdout().flush()?;
                tokio::select! {
                    result = meet_host::server::serve(app, listener, serve_options) => result,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_seconds_or_milliseconds() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn limit_flags_reach_the_options() {
        let cli = Cli::try_parse_from([
            "meet-host",
            "up",
            "--max-instances",
            "8",
            "--request-timeout",
            "2s",
            "--max-request-body-bytes",
            "10",
            "--reuse-sqlite-connections",
        ])
        .unwrap();
        let Command::Up { app, limits, .. } = cli.command else {
            panic!("not `up`");
        };
        let mut options = app.options();
        let serve = limits.apply(&mut options);
        assert_eq!(options.limits.max_instances, 8);
        assert_eq!(options.limits.max_instances_per_component, 8);
        assert!(options.reuse_sqlite_connections);
        assert_eq!(serve.request_timeout, Duration::from_secs(2));
        assert_eq!(serve.max_body_bytes, 10);
        assert_eq!(serve.queue_timeout, Duration::from_secs(10));
    }
}
