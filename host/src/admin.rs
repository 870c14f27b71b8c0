//! Operator commands that run against the application's `default` database
//! with the domain rules of `meet-core`.

use std::cell::RefCell;

use anyhow::{Context, Result};
use meet_core::identity::merge::{merge_duplicate_users, MergedEmail};
use meet_core::ports::{Database, DbError, SqlRows, SqlValue};

use crate::bindings::sqlite::Value;
use crate::runtime_config::DatabaseLocation;
use crate::{App, LoadOptions};

/// `meet-core`'s database port over a libSQL stream (one stream, so that
/// `BEGIN`…`COMMIT` spans the statements).
struct LibsqlDatabase(RefCell<crate::libsql::Stream>);

impl Database for LibsqlDatabase {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError> {
        let params = params
            .iter()
            .map(|value| match value {
                SqlValue::Null => Value::Null,
                SqlValue::Integer(v) => Value::Integer(*v),
                SqlValue::Real(v) => Value::Real(*v),
                SqlValue::Text(v) => Value::Text(v.clone()),
                SqlValue::Blob(v) => Value::Blob(v.clone()),
            })
            .collect();
        let result = self
            .0
            .borrow_mut()
            .execute(sql, params)
            .map_err(|error| DbError::Other(format!("{error:?}")))?;
        Ok(SqlRows {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|row| {
                    row.values
                        .into_iter()
                        .map(|value| match value {
                            Value::Null => SqlValue::Null,
                            Value::Integer(v) => SqlValue::Integer(v),
                            Value::Real(v) => SqlValue::Real(v),
                            Value::Text(v) => SqlValue::Text(v),
                            Value::Blob(v) => SqlValue::Blob(v),
                        })
                        .collect()
                })
                .collect(),
        })
    }
}

/// Runs `f` on the `default` database of the runtime configuration.
fn with_default_database<T>(
    options: &LoadOptions,
    f: impl FnOnce(&dyn Database) -> Result<T, DbError>,
) -> Result<T> {
    let (_, runtime) = App::configure(options)?;
    let location = runtime
        .databases
        .get("default")
        .context("no `default` database is configured")?;
    match location {
        DatabaseLocation::File(path) => {
            let db = meet_core::native::SqliteDatabase::open(path)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            f(&db).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        DatabaseLocation::Libsql { url, token } => {
            let stream = crate::libsql::Stream::open(crate::libsql::Client::new(url, token));
            let db = LibsqlDatabase(RefCell::new(stream));
            f(&db).map_err(|e| anyhow::anyhow!("{url}: {e}"))
        }
    }
}

/// Merges users sharing an email (see `meet_core::identity::merge`), printing
/// one line per email.
pub fn merge_duplicates(
    options: &LoadOptions,
    email_filter: Option<&str>,
    dry_run: bool,
) -> Result<Vec<MergedEmail>> {
    let merged = with_default_database(options, |db| {
        merge_duplicate_users(db, email_filter, dry_run)
    })?;
    for group in &merged {
        println!(
            "{} {}: keeping user {}, merging {}",
            if dry_run { "would merge" } else { "merged" },
            group.email,
            group.kept_user,
            group.removed_users.join(", ")
        );
    }
    if merged.is_empty() {
        println!("no users share an email");
    }
    Ok(merged)
}
