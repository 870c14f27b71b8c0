//! SQL migrations: `migrations/NNNN_name.sql` next to the manifest, applied
//! in version order, each in one transaction with its `schema_migrations` row.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The bookkeeping table; `version` is the file's number as written.
pub const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// Records a migration; `applied_at` is UTC ISO 8601 from SQLite's clock.
pub const RECORD_MIGRATION: &str = "INSERT INTO schema_migrations (version, name, applied_at) \
    VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: String,
    pub name: String,
    pub sql: String,
}

impl Migration {
    /// `0001_initial` for log lines.
    pub fn label(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }
}

/// Splits `NNNN_name.sql` into version and name.
fn parse_file_name(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (version, name) = stem.split_once('_')?;
    let version_ok = version.len() >= 4 && version.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (version_ok && name_ok).then(|| (version.to_string(), name.to_string()))
}

/// Reads the migrations of `dir`, sorted by version. A missing directory
/// means no migrations; any other file name is an error, so that a typo
/// doesn't silently skip a migration.
pub fn discover(dir: &Path) -> Result<Vec<Migration>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read migrations directory {}", dir.display()))?;
    let mut migrations = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let Some((version, name)) = parse_file_name(&file_name) else {
            bail!(
                "{}: migration file names must look like NNNN_name.sql (at least four digits, then `_` and a name of letters, digits, `_` or `-`)",
                entry.path().display()
            );
        };
        let sql = std::fs::read_to_string(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        migrations.push(Migration { version, name, sql });
    }
    migrations.sort_by_key(|m| {
        (
            m.version.parse::<u128>().unwrap_or(u128::MAX),
            m.version.clone(),
        )
    });
    for pair in migrations.windows(2) {
        if pair[0].version.parse::<u128>().ok() == pair[1].version.parse::<u128>().ok() {
            bail!(
                "{}: migrations {} and {} have the same version",
                dir.display(),
                pair[0].label(),
                pair[1].label()
            );
        }
    }
    Ok(migrations)
}

/// Applies pending migrations to a local SQLite file; returns those applied.
pub fn apply_to_file(db: &Path, migrations: &[Migration]) -> Result<Vec<Migration>> {
    crate::sqlite::prepare_file(db)?;
    let mut conn = crate::sqlite::open_file(db)
        .with_context(|| format!("cannot open database {}", db.display()))?;
    conn.execute(CREATE_SCHEMA_MIGRATIONS, [])
        .with_context(|| format!("cannot create schema_migrations in {}", db.display()))?;
    let mut applied = Vec::new();
    for migration in migrations {
        let done: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [&migration.version],
                |row| row.get(0),
            )
            .context("cannot read schema_migrations")?;
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(&migration.sql)
            .with_context(|| format!("migration {} failed", migration.label()))?;
        tx.execute(RECORD_MIGRATION, [&migration.version, &migration.name])
            .with_context(|| format!("cannot record migration {}", migration.label()))?;
        tx.commit()
            .with_context(|| format!("cannot commit migration {}", migration.label()))?;
        applied.push(migration.clone());
    }
    Ok(applied)
}

/// Applies pending migrations to a libSQL server over Hrana HTTP; the
/// stream's baton keeps each migration and its record in one transaction.
pub fn apply_to_libsql(
    client: std::sync::Arc<crate::libsql::Client>,
    migrations: &[Migration],
) -> Result<Vec<Migration>> {
    use crate::bindings::sqlite::Value;
    let mut stream = crate::libsql::Stream::open(client);
    let result = (|| {
        stream.sequence(CREATE_SCHEMA_MIGRATIONS)?;
        let done = stream
            .execute("SELECT version FROM schema_migrations", vec![])
            .map_err(|e| anyhow::anyhow!("cannot read schema_migrations: {e:?}"))?;
        let done: Vec<String> = done
            .rows
            .into_iter()
            .filter_map(|row| match row.values.into_iter().next() {
                Some(Value::Text(version)) => Some(version),
                _ => None,
            })
            .collect();
        let mut applied = Vec::new();
        for migration in migrations.iter().filter(|m| !done.contains(&m.version)) {
            let run = |stream: &mut crate::libsql::Stream| -> Result<()> {
                stream.sequence("BEGIN")?;
                stream.sequence(&migration.sql)?;
                stream
                    .execute(
                        RECORD_MIGRATION,
                        vec![
                            Value::Text(migration.version.clone()),
                            Value::Text(migration.name.clone()),
                        ],
                    )
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                stream.sequence("COMMIT")
            };
            if let Err(err) = run(&mut stream) {
                let _ = stream.sequence("ROLLBACK");
                return Err(err.context(format!("migration {} failed", migration.label())));
            }
            applied.push(migration.clone());
        }
        Ok(applied)
    })();
    stream.close();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, sql: &str) {
        std::fs::write(dir.join(name), sql).unwrap();
    }

    fn schema(db: &Path) -> Vec<String> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn applying_twice_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let migrations_dir = dir.path().join("migrations");
        std::fs::create_dir(&migrations_dir).unwrap();
        write(
            &migrations_dir,
            "0002_more.sql",
            "ALTER TABLE a ADD COLUMN y TEXT;",
        );
        write(
            &migrations_dir,
            "0001_initial.sql",
            "CREATE TABLE a (x TEXT);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;",
        );
        let db = dir.path().join(".spin").join("test.db");

        let migrations = discover(&migrations_dir).unwrap();
        assert_eq!(
            migrations.iter().map(Migration::label).collect::<Vec<_>>(),
            ["0001_initial", "0002_more"]
        );

        let first = apply_to_file(&db, &migrations).unwrap();
        assert_eq!(first.len(), 2);
        let schema_after_first = schema(&db);
        let second = apply_to_file(&db, &migrations).unwrap();
        assert!(second.is_empty());
        assert_eq!(schema(&db), schema_after_first);

        let conn = rusqlite::Connection::open(&db).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rows,
            [
                ("0001".into(), "initial".into()),
                ("0002".into(), "more".into())
            ]
        );
    }

    #[test]
    fn failed_migration_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let bad = Migration {
            version: "0001".into(),
            name: "bad".into(),
            sql: "CREATE TABLE ok (x TEXT); THIS IS NOT SQL;".into(),
        };
        let err = apply_to_file(&db, &[bad]).unwrap_err();
        assert!(format!("{err:#}").contains("0001_bad"));
        assert!(!schema(&db).iter().any(|s| s.contains("TABLE ok")));
    }

    #[test]
    fn bad_file_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0001_initial.sql", "");
        write(dir.path(), "initial.sql", "");
        let err = discover(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("initial.sql") && err.to_string().contains("NNNN_name.sql")
        );
        assert_eq!(
            parse_file_name("0001_initial.sql"),
            Some(("0001".into(), "initial".into()))
        );
        assert_eq!(parse_file_name("01_x.sql"), None);
        assert_eq!(parse_file_name("0001_.sql"), None);
        assert_eq!(parse_file_name("0001_x.txt"), None);
    }
}
