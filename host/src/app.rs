//! Loading an application: manifest, runtime config, variables, compiled
//! and pre-instantiated components.

use crate::manifest::{ComponentDecl, Manifest};
use crate::outbound::AllowedHosts;
use crate::routes::Router;
use crate::runtime_config::{DatabaseLocation, RuntimeConfig};
use crate::sqlite::{Database, SqliteCtx};
use crate::state::{ComponentPolicy, HostState, OutboundTimeouts};
use crate::variables::{
    resolve_app_variables, resolve_component_variables, EnvLookup, VariableDecl, VariableResolver,
};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Explicit bounds on what concurrently running instances may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Component instances alive at once, all components together (one per
    /// in-flight request): the size of wasmtime's instance pool.
    pub max_instances: u32,
    /// Instances of one component alive at once; further requests for it
    /// wait for a free slot.
    pub max_instances_per_component: u32,
    /// Linear memory of one instance.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_instances_per_component: 256,
            max_memory_bytes: 128 << 20,
        }
    }
}

/// How often the engine's epoch advances: the granularity of request
/// deadlines, and how often a busy guest yields its thread to others.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("meet-host-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("cannot start the epoch thread");
}

/// The wasmtime engine with the pooling allocator sized from `limits`.
pub fn engine(limits: Limits) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // A Rust wasip2 component holds a few core instances (the program plus
    // small adapter shims), each with at most a memory and a table or two.
    pool.total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * 8)
        .total_memories(limits.max_instances * 2)
        .total_tables(limits.max_instances * 8)
        .total_stacks(limits.max_instances)
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(limits.max_memory_bytes)
        // As Spin 4 sets them: a reused slot resets the lowest 2 MiB of its
        // memory and 512 KiB of its tables in place (memset, and a copy of
        // the data image) instead of unmapping them, so the next instance
        // takes no page faults or TLB shootdowns there. The whole region is
        // reset whatever a request touched: `pagemap_scan`, which would limit
        // it to dirty pages, is off in Spin as by default.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(512 << 10)
        // wasmtime's default, which Spin keeps.
        .max_unused_warm_slots(limits.max_instances.min(100));
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// `<manifest dir>/.spin/compiled/<sha256>.cwasm`, keyed by the wasm bytes
/// and everything that makes compiled code incompatible.
fn cache_path(engine: &Engine, cache_dir: &Path, wasm: &[u8]) -> PathBuf {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut digest = Sha256::new();
    digest.update(wasm);
    digest.update(b"wasmtime 48");
    digest.update(env!("CARGO_PKG_VERSION").as_bytes());
    digest.update(compat.finish().to_le_bytes());
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir.join(format!("{hex}.cwasm"))
}

/// Compiles a component, or loads the artefact cached by an earlier run.
pub fn load_component(engine: &Engine, wasm_path: &Path, cache_dir: &Path) -> Result<Component> {
    let wasm =
        std::fs::read(wasm_path).with_context(|| format!("cannot read {}", wasm_path.display()))?;
    let cached = cache_path(engine, cache_dir, &wasm);
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this
        // host for an engine with the same compatibility hash (part of the
        // file name), in a directory only this application uses.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(err) => eprintln!(
                "ignoring unusable compiled cache {}: {err}",
                cached.display()
            ),
        }
    }
    let component = Component::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile {}", wasm_path.display()))?;
    // The cache is an optimisation: failing to write it is not fatal.
    if let Err(err) = write_cache(&component, &cached) {
        eprintln!(
            "cannot cache compiled component at {}: {err:#}",
            cached.display()
        );
    }
    Ok(component)
}

fn write_cache(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    // Write then rename, so a concurrent start never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// One component, compiled and pre-instantiated.
pub struct LoadedComponent {
    pub id: String,
    pub pre: ProxyPre<HostState>,
    pub policy: ComponentPolicy,
    /// Free instance slots of this component
    /// ([`Limits::max_instances_per_component`]).
    pub slots: Arc<Semaphore>,
}

impl LoadedComponent {
    /// A fresh store for one request whose guest code stops (traps with
    /// `Trap::Interrupt`) once `deadline` has passed. Until then a guest
    /// that keeps computing yields its thread every epoch tick.
    pub fn new_store(&self, engine: &Engine, deadline: Instant) -> Store<HostState> {
        let mut store = Store::new(engine, HostState::new(&self.policy));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

/// Options for [`App::load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub limits: Limits,
    /// Keep idle local SQLite connections between requests (not what Spin
    /// does; never the default).
    pub reuse_sqlite_connections: bool,
    /// Outbound `wasi:http` timeouts where the guest sets none.
    pub outbound_timeouts: OutboundTimeouts,
}

impl LoadOptions {
    pub fn new(manifest: &Path, runtime_config: Option<&Path>) -> Self {
        Self {
            manifest: manifest.to_path_buf(),
            runtime_config: runtime_config.map(Path::to_path_buf),
            limits: Limits::default(),
            reuse_sqlite_connections: false,
            outbound_timeouts: OutboundTimeouts::default(),
        }
    }
}

/// A loaded application, ready to serve.
pub struct App {
    pub engine: Engine,
    pub manifest: Manifest,
    pub router: Router,
    pub databases: Arc<BTreeMap<String, Database>>,
    pub components: BTreeMap<String, Arc<LoadedComponent>>,
    /// Free slots of the instance pool, all components together
    /// ([`Limits::max_instances`]).
    pub instance_slots: Arc<Semaphore>,
}

impl App {
    /// Reads the manifest and runtime config and resolves variables, without
    /// compiling anything (what `migrate` needs).
    pub fn configure(options: &LoadOptions) -> Result<(Manifest, RuntimeConfig)> {
        let manifest = Manifest::load(&options.manifest)?;
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let runtime = RuntimeConfig::load(options.runtime_config.as_deref(), &manifest.dir, &cwd)?;
        for component in manifest.components.values() {
            for db in &component.sqlite_databases {
                if !runtime.databases.contains_key(db) {
                    bail!(
                        "{}: [component.{}].sqlite_databases: database `{db}` is not defined (add [sqlite_database.{db}] to the runtime config)",
                        manifest.path.display(),
                        component.id
                    );
                }
            }
        }
        Ok((manifest, runtime))
    }

    /// Loads everything and pre-instantiates every component, so that a
    /// missing import fails here, naming the component.
    pub fn load(options: &LoadOptions) -> Result<Self> {
        let (manifest, runtime) = Self::configure(options)?;
        let app_values =
            resolve_app_variables(&manifest.variables, |name| std::env::var(name).ok())
                .with_context(|| format!("{}: [variables]", manifest.path.display()))?;

        for location in runtime.databases.values() {
            if let DatabaseLocation::File(path) = location {
                crate::sqlite::create_parent_dir(path)?;
            }
        }
        let databases: Arc<BTreeMap<String, Database>> = Arc::new(
            runtime
                .databases
                .iter()
                .map(|(name, location)| {
                    (
                        name.clone(),
                        Database::new(location, options.reuse_sqlite_connections),
                    )
                })
                .collect(),
        );
        let app_decls = Arc::new(manifest.variables.clone());
        let env: EnvLookup = Arc::new(|name| std::env::var(name).ok());

        let limits = options.limits;
        if limits.max_instances == 0 || limits.max_instances_per_component == 0 {
            bail!("instance limits must be at least 1");
        }
        let engine = engine(limits)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        crate::state::add_to_linker(&mut linker)?;
        let cache_dir = manifest.dir.join(".spin").join("compiled");

        let mut components = BTreeMap::new();
        // Only routed components are instantiated, as in Spin.
        let routed: std::collections::BTreeSet<&str> = manifest
            .routes
            .iter()
            .map(|r| r.component.as_str())
            .collect();
        for id in routed {
            let decl = &manifest.components[id];
            let shared = Shared {
                app_values: &app_values,
                app_decls: &app_decls,
                env: &env,
                databases: &databases,
                options,
            };
            let loaded = Self::load_one(&engine, &linker, &cache_dir, decl, &shared)
                .with_context(|| format!("{}: [component.{id}]", manifest.path.display()))?;
            components.insert(id.to_string(), Arc::new(loaded));
        }
        let router = Router::new(manifest.routes.clone());
        Ok(Self {
            engine,
            manifest,
            router,
            databases,
            components,
            instance_slots: Arc::new(Semaphore::new(limits.max_instances as usize)),
        })
    }

    fn load_one(
        engine: &Engine,
        linker: &Linker<HostState>,
        cache_dir: &Path,
        decl: &ComponentDecl,
        shared: &Shared<'_>,
    ) -> Result<LoadedComponent> {
        let app_values = shared.app_values;
        let id = &decl.id;
        if !decl.source.exists() {
            bail!(
                "source {} does not exist (build the component first)",
                decl.source.display()
            );
        }
        let allowed_hosts = AllowedHosts::parse(&decl.allowed_outbound_hosts, app_values)?;
        // Resolved once here only to fail at start-up; `get` resolves
        // again every time, as Spin does.
        resolve_component_variables(&decl.variables, app_values)
            .with_context(|| format!("[component.{id}.variables]"))?;
        let variables = VariableResolver::new(
            decl.variables.clone(),
            shared.app_decls.clone(),
            shared.env.clone(),
        );
        let component = load_component(engine, &decl.source, cache_dir)?;
        let pre = instantiate_pre(linker, &component, id)?;
        let policy = ComponentPolicy {
            id: Arc::from(id.as_str()),
            allowed_hosts: Arc::new(allowed_hosts),
            variables: Arc::new(variables),
            sqlite: SqliteCtx::new(&decl.sqlite_databases, shared.databases.clone()),
            environment: Arc::new(decl.environment.clone().into_iter().collect()),
            outbound_timeouts: shared.options.outbound_timeouts,
        };
        let per_component = shared.options.limits.max_instances_per_component;
        Ok(LoadedComponent {
            id: id.clone(),
            pre,
            policy,
            slots: Arc::new(Semaphore::new(per_component as usize)),
        })
    }
}

/// What every component of an application is loaded with.
struct Shared<'a> {
    app_values: &'a BTreeMap<String, String>,
    app_decls: &'a Arc<BTreeMap<String, VariableDecl>>,
    env: &'a EnvLookup,
    databases: &'a Arc<BTreeMap<String, Database>>,
    options: &'a LoadOptions,
}

/// Pre-instantiates `component` as a `wasi:http/proxy`; an import the host
/// does not provide, or a missing `incoming-handler` export, fails here.
pub fn instantiate_pre(
    linker: &Linker<HostState>,
    component: &Component,
    id: &str,
) -> Result<ProxyPre<HostState>> {
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!("component `{id}` imports something meet-host does not provide")
        })?;
    ProxyPre::new(instance_pre)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component `{id}` does not export wasi:http/incoming-handler"))
}

/// The average time to create a store and instantiate `component` from its
/// pre-instantiated form, over `iterations` runs (what every request pays
/// before the guest runs). Loads the application like `meet-host up`.
pub fn measure_instantiation(
    manifest: &Path,
    runtime_config: Option<&Path>,
    component: &str,
    iterations: u32,
) -> Result<std::time::Duration> {
    if iterations == 0 {
        bail!("iterations must be at least 1");
    }
    let app = App::load(&LoadOptions::new(manifest, runtime_config))?;
    let loaded = app
        .components
        .get(component)
        .with_context(|| {
            format!(
                "no routed component `{component}` in {}",
                manifest.display()
            )
        })?
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let start = std::time::Instant::now();
        for _ in 0..iterations {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut store = loaded.new_store(&app.engine, deadline);
            let proxy = loaded.pre.instantiate_async(&mut store).await?;
            std::hint::black_box(&proxy);
        }
        Ok(start.elapsed() / iterations)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a one-component app whose `.wasm` is WAT text (wasmtime's
    /// `wat` feature compiles either).
    fn app_with_component(dir: &Path, wat: &str) -> LoadOptions {
        std::fs::write(dir.join("comp.wasm"), wat).unwrap();
        let manifest = dir.join("spin.toml");
        std::fs::write(
            &manifest,
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"odd-one\"\n\
             [component.odd-one]\nsource = \"comp.wasm\"\n",
        )
        .unwrap();
        let mut options = LoadOptions::new(&manifest, None);
        options.limits = Limits {
            max_instances: 4,
            max_instances_per_component: 4,
            max_memory_bytes: 1 << 20,
        };
        options
    }

    fn load_error(options: &LoadOptions) -> String {
        match App::load(options) {
            Ok(_) => panic!("the component should have been refused"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn a_missing_import_fails_at_start_up_naming_component_and_import() {
        // The instance exports a function: an empty instance type is
        // satisfied by anything.
        let dir = tempfile::tempdir().unwrap();
        let options = app_with_component(
            dir.path(),
            r#"(component (import "example:missing/iface@1.0.0" (instance (export "f" (func)))))"#,
        );
        let err = load_error(&options);
        assert!(err.contains("odd-one"), "{err}");
        assert!(err.contains("example:missing/iface@1.0.0"), "{err}");
    }

    #[test]
    fn a_component_without_the_http_export_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = app_with_component(dir.path(), "(component)");
        let err = load_error(&options);
        assert!(
            err.contains("odd-one") && err.contains("incoming-handler"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_source_names_the_component_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let options = app_with_component(dir.path(), "(component)");
        std::fs::remove_file(dir.path().join("comp.wasm")).unwrap();
        let err = load_error(&options);
        assert!(
            err.contains("[component.odd-one]") && err.contains("comp.wasm"),
            "{err}"
        );
    }

    #[test]
    fn compiled_components_are_cached_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(Limits {
            max_instances: 2,
            max_instances_per_component: 2,
            max_memory_bytes: 1 << 20,
        })
        .unwrap();
        let wasm = dir.path().join("c.wasm");
        std::fs::write(&wasm, "(component)").unwrap();
        let cache = dir.path().join("compiled");
        load_component(&engine, &wasm, &cache).unwrap();
        let files: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
        assert_eq!(files.len(), 1);
        // The second load deserializes the cached artefact.
        load_component(&engine, &wasm, &cache).unwrap();
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    }
}
