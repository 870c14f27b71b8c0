//! `--runtime-config-file`: where each named SQLite database lives.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where one named database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A local file, opened with bundled SQLite.
    File(PathBuf),
    /// A remote libSQL server spoken to over Hrana HTTP.
    Libsql { url: String, token: String },
}

#[derive(Deserialize)]
struct RawRuntimeConfig {
    #[serde(default)]
    sqlite_database: BTreeMap<String, RawDatabase>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawDatabase {
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
        #[serde(default)]
        #[allow(dead_code)]
        allow_attach_file: Option<toml::Value>,
    },
    Libsql {
        url: String,
        token: String,
    },
}

/// The databases an application may use, by name.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub databases: BTreeMap<String, DatabaseLocation>,
}

impl RuntimeConfig {
    /// Loads the runtime configuration. Relative paths resolve against
    /// `cwd`; without an entry, `default` is `.spin/sqlite_db.db` under the
    /// manifest's directory, as in Spin.
    pub fn load(file: Option<&Path>, manifest_dir: &Path, cwd: &Path) -> Result<Self> {
        let mut databases = BTreeMap::new();
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read runtime config {}", file.display()))?;
            databases = Self::parse(&text, manifest_dir, cwd)
                .with_context(|| format!("invalid runtime config {}", file.display()))?
                .databases;
        }
        databases
            .entry("default".to_string())
            .or_insert_with(|| DatabaseLocation::File(default_database_path(manifest_dir)));
        Ok(Self { databases })
    }

    pub fn parse(text: &str, manifest_dir: &Path, cwd: &Path) -> Result<Self> {
        let raw: RawRuntimeConfig = toml::from_str(text)?;
        let mut databases = BTreeMap::new();
        for (name, db) in raw.sqlite_database {
            let location = match db {
                RawDatabase::Spin {
                    path: Some(path), ..
                } => DatabaseLocation::File(cwd.join(path)),
                RawDatabase::Spin { path: None, .. } => {
                    DatabaseLocation::File(manifest_dir.join(".spin").join(format!("{name}.db")))
                }
                RawDatabase::Libsql { url, token } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        bail!("[sqlite_database.{name}].url must be an http:// or https:// URL");
                    }
                    DatabaseLocation::Libsql { url, token }
                }
            };
            databases.insert(name, location);
        }
        Ok(Self { databases })
    }
}

/// Spin's default location of the `default` database.
pub fn default_database_path(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join(".spin").join("sqlite_db.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_and_libsql_entries() {
        let text = r#"
[sqlite_database.default]
type = "spin"
path = ".spin/meet.db"
[sqlite_database.remote]
type = "libsql"
url = "https://db.example.org"
token = "t"
"#;
        let c = RuntimeConfig::parse(text, Path::new("/app"), Path::new("/cwd")).unwrap();
        assert_eq!(
            c.databases["default"],
            DatabaseLocation::File("/cwd/.spin/meet.db".into())
        );
        assert!(matches!(
            c.databases["remote"],
            DatabaseLocation::Libsql { .. }
        ));
    }

    #[test]
    fn default_database_without_config() {
        let c = RuntimeConfig::load(None, Path::new("/app"), Path::new("/cwd")).unwrap();
        assert_eq!(
            c.databases["default"],
            DatabaseLocation::File("/app/.spin/sqlite_db.db".into())
        );
    }

    #[test]
    fn bad_entries_fail() {
        let bad = "[sqlite_database.default]\ntype = \"postgres\"\n";
        assert!(RuntimeConfig::parse(bad, Path::new("/"), Path::new("/")).is_err());
        let bad = "[sqlite_database.x]\ntype = \"libsql\"\nurl = \"db.example\"\ntoken = \"t\"\n";
        let e = RuntimeConfig::parse(bad, Path::new("/"), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("[sqlite_database.x].url"));
    }
}
