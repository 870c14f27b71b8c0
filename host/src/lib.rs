//! A small Spin-compatible host for the Meet components, built on wasmtime.
//!
//! `meet-host up` serves a `spin.toml` application the way `spin up` does;
//! `meet-host migrate` applies `migrations/*.sql` to the `default` database.
//! For benchmarks, [`measure_instantiation`] times what every request pays
//! before the guest runs.

pub mod admin;
pub mod app;
mod bindings;
pub mod libsql;
pub mod manifest;
pub mod migrations;
pub mod outbound;
pub mod routes;
pub mod runtime_config;
pub mod server;
pub mod sqlite;
pub mod state;
pub mod variables;

pub use app::{measure_instantiation, App, Limits, LoadOptions};

use anyhow::{Context, Result};
use runtime_config::DatabaseLocation;

/// Applies pending migrations (`migrations/` next to the manifest) to the
/// `default` database, printing one line per migration applied.
pub fn migrate(options: &LoadOptions) -> Result<usize> {
    let (manifest, runtime) = App::configure(options)?;
    let dir = manifest.dir.join("migrations");
    let migrations = migrations::discover(&dir)?;
    let Some(location) = runtime.databases.get("default") else {
        return Ok(0);
    };
    let (applied, target) = match location {
        DatabaseLocation::File(path) => (
            migrations::apply_to_file(path, &migrations)
                .with_context(|| format!("migrating {}", path.display()))?,
            path.display().to_string(),
        ),
        DatabaseLocation::Libsql { url, token } => (
            migrations::apply_to_libsql(libsql::Client::new(url, token), &migrations)
                .with_context(|| format!("migrating the libSQL database at {url}"))?,
            url.clone(),
        ),
    };
    for migration in &applied {
        println!("applied migration {} to {target}", migration.label());
    }
    Ok(applied.len())
}

/// Runs every component's `[component.<id>.build]` commands through the
/// shell, as `spin build` does.
pub fn build(manifest_path: &std::path::Path) -> Result<()> {
    let manifest = manifest::Manifest::load(manifest_path)?;
    for component in manifest.components.values() {
        let Some(build) = &component.build else {
            continue;
        };
        for command in &build.commands {
            eprintln!("building component `{}`: {command}", component.id);
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&build.workdir)
                .status()
                .with_context(|| format!("cannot run the build command of `{}`", component.id))?;
            if !status.success() {
                anyhow::bail!(
                    "[component.{}.build]: `{command}` failed with {status}",
                    component.id
                );
            }
        }
    }
    Ok(())
}
