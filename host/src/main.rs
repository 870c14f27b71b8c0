//! `meet-host up` / `meet-host migrate`, with `spin up`'s flags.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use meet_host::{migrate, App, LoadOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the application.
    Up {
        #[command(flatten)]
        app: AppArgs,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
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
        Command::Up { app, listen } => {
            let options = app.options();
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
                    result = meet_host::server::serve(app, listener) => result,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
    }
}
