//! `spin.toml` (manifest version 2): the subset the Meet application uses.

use crate::routes::Route;
use crate::variables::{is_valid_name, Template, VariableDecl};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<RawHttpTrigger>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    build: Option<RawBuild>,
}

/// `[component.<id>.build]`, used only by `meet-host build`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: RawCommands,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommands {
    One(String),
    Many(Vec<String>),
}

/// How to build a component, as `spin build` runs it.
#[derive(Debug, Clone)]
pub struct BuildDecl {
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// The directory they run in.
    pub workdir: PathBuf,
}

/// A component as the host needs it.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub id: String,
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub variables: BTreeMap<String, Template>,
    pub environment: BTreeMap<String, String>,
    pub build: Option<BuildDecl>,
}

/// The validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    /// The directory relative paths in the manifest resolve against.
    pub dir: PathBuf,
    pub name: String,
    pub variables: BTreeMap<String, VariableDecl>,
    pub routes: Vec<Route>,
    pub components: BTreeMap<String, ComponentDecl>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .canonicalize()
            .with_context(|| format!("cannot resolve manifest path {}", path.display()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Self::parse(&text, path, &dir)
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses and validates manifest text; `dir` anchors relative sources.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        match raw.spin_manifest_version.as_integer() {
            Some(2) => {}
            _ => bail!("`spin_manifest_version` must be 2"),
        }
        let _ = (
            &raw.application.version,
            &raw.application.description,
            &raw.application.authors,
        );

        let mut variables = BTreeMap::new();
        for (name, var) in raw.variables {
            if !is_valid_name(&name) {
                bail!("[variables]: invalid variable name {name:?} (use lower case letters, digits and underscores, starting with a letter)");
            }
            match (&var.default, var.required) {
                (Some(_), true) => bail!(
                    "[variables].{name}: `default` and `required = true` are mutually exclusive"
                ),
                (None, false) => {
                    bail!("[variables].{name}: needs either `default` or `required = true`")
                }
                _ => {}
            }
            variables.insert(
                name,
                VariableDecl {
                    default: var.default,
                    required: var.required,
                    secret: var.secret,
                },
            );
        }

        let mut components = BTreeMap::new();
        for (id, comp) in raw.component {
            let _ = &comp.description;
            let mut templates = BTreeMap::new();
            for (name, text) in comp.variables {
                if !is_valid_name(&name) {
                    bail!("[component.{id}.variables]: invalid variable name {name:?}");
                }
                let template = Template::parse(&text)
                    .with_context(|| format!("[component.{id}.variables].{name}"))?;
                for used in template.variables() {
                    if !variables.contains_key(used) {
                        bail!("[component.{id}.variables].{name}: refers to undefined variable `{used}` (not declared in [variables])");
                    }
                }
                templates.insert(name, template);
            }
            for entry in &comp.allowed_outbound_hosts {
                let template = Template::parse(entry).with_context(|| {
                    format!("[component.{id}].allowed_outbound_hosts: {entry:?}")
                })?;
                for used in template.variables() {
                    if !variables.contains_key(used) {
                        bail!("[component.{id}].allowed_outbound_hosts: {entry:?} refers to undefined variable `{used}` (not declared in [variables])");
                    }
                }
            }
            if comp.source.is_empty() {
                bail!("[component.{id}].source must not be empty");
            }
            let build = comp.build.map(|b| BuildDecl {
                commands: match b.command {
                    RawCommands::One(c) => vec![c],
                    RawCommands::Many(cs) => cs,
                },
                workdir: dir.join(b.workdir.unwrap_or_default()),
            });
            components.insert(
                id.clone(),
                ComponentDecl {
                    build,
                    source: dir.join(&comp.source),
                    id,
                    allowed_outbound_hosts: comp.allowed_outbound_hosts,
                    sqlite_databases: comp.sqlite_databases,
                    variables: templates,
                    environment: comp.environment,
                },
            );
        }

        let mut routes = Vec::new();
        for (kind, triggers) in raw.trigger {
            if kind != "http" {
                bail!("[[trigger.{kind}]]: only HTTP triggers are supported");
            }
            for (i, trigger) in triggers.into_iter().enumerate() {
                let at = format!("[[trigger.http]] #{} (route {:?})", i + 1, trigger.route);
                if !components.contains_key(&trigger.component) {
                    bail!(
                        "{at}: component `{}` is not defined (no [component.{}])",
                        trigger.component,
                        trigger.component
                    );
                }
                routes.push(
                    Route::parse(&trigger.route, &trigger.component).with_context(|| at.clone())?,
                );
            }
        }

        Ok(Self {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            name: raw.application.name,
            variables,
            routes,
            components,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "meet"
[variables]
api_host = { default = "example.com" }
secret_key = { required = true, secret = true }
[[trigger.http]]
route = "/api/v1.0/..."
component = "identity"
[component.identity]
source = "target/identity.wasm"
allowed_outbound_hosts = ["https://{{ api_host }}"]
sqlite_databases = ["default"]
[component.identity.variables]
users_url = "https://{{ api_host }}/users"
[component.identity.build]
command = "cargo build"
"#;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("spin.toml"), Path::new("/app"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn parses_the_supported_subset() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.name, "meet");
        assert_eq!(m.routes.len(), 1);
        let c = &m.components["identity"];
        assert_eq!(c.source, Path::new("/app/target/identity.wasm"));
        assert_eq!(c.sqlite_databases, ["default"]);
        assert!(m.variables["secret_key"].secret);
        assert!(c.variables.contains_key("users_url"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = error(&GOOD.replace("component = \"identity\"", "component = \"nope\""));
        assert!(
            e.contains("[[trigger.http]] #1") && e.contains("`nope`"),
            "{e}"
        );

        let e = error(&GOOD.replace("/users\"", "/{{ undefined_var }}\""));
        assert!(
            e.contains("[component.identity.variables].users_url") && e.contains("undefined_var"),
            "{e}"
        );

        let e = error(&GOOD.replace("source = ", "sorce = "));
        assert!(e.contains("sorce"), "{e}");

        let e = error(&GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(e.contains("spin_manifest_version"), "{e}");

        let e = error(&GOOD.replace("{ default = \"example.com\" }", "{ }"));
        assert!(e.contains("[variables].api_host"), "{e}");

        let e = error(&GOOD.replace("https://{{ api_host }}\"]", "https://{{ nohost }}\"]"));
        assert!(
            e.contains("allowed_outbound_hosts") && e.contains("nohost"),
            "{e}"
        );

        let e = error(&GOOD.replace("route = \"/api/v1.0/...\"", "route = \"api\""));
        assert!(e.contains("[[trigger.http]] #1"), "{e}");
    }
}
