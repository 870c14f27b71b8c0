//! `meet_cache`: values with a time to live, where upstream uses Redis.

use time::OffsetDateTime;

use crate::ports::{Database, DbError, SqlValue};
use crate::sql::{parse_timestamp, rows, timestamp};

fn expiry(now: OffsetDateTime, ttl_seconds: u64) -> String {
    timestamp(now + time::Duration::seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)))
}

/// Stores `value` under `key` for `ttl_seconds`, replacing what was there.
pub fn set(
    db: &dyn Database,
    key: &str,
    value: &str,
    ttl_seconds: u64,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO meet_cache (key, value, expires_at, written_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
           written_at = excluded.written_at",
        &[
            key.into(),
            value.into(),
            expiry(now, ttl_seconds).into(),
            timestamp(now).into(),
        ],
    )?;
    Ok(())
}

/// Reads and removes a live value in one statement (read-once values).
pub fn take(db: &dyn Database, key: &str, now: OffsetDateTime) -> Result<Option<String>, DbError> {
    let result = db.execute(
        "DELETE FROM meet_cache WHERE key = ? RETURNING value, expires_at",
        &[key.into()],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok(None);
    };
    let alive = parse_timestamp(&row.text("expires_at")?).is_some_and(|at| at > now);
    Ok(if alive {
        Some(row.text("value")?)
    } else {
        None
    })
}

/// Removes every expired value.
pub fn purge_expired(db: &dyn Database, now: OffsetDateTime) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM meet_cache WHERE expires_at <= ?",
        &[timestamp(now).into()],
    )?;
    Ok(())
}

/// Expired rows removed by [`purge_expired_rows`], per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub sessions: u64,
    pub bearer_tokens: u64,
    /// Throttle counters, room-creation callbacks and other cached values.
    pub cache: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.sessions + self.bearer_tokens + self.cache
    }
}

/// Removes at most `limit` expired rows from each table of expiring login
/// and cache state (three statements, for the maintenance endpoint; every
/// write of these tables also purges 20 of them, see migration 0007).
pub fn purge_expired_rows(
    services: &crate::ports::Services,
    limit: u64,
) -> Result<PurgeCounts, DbError> {
    let now: SqlValue = timestamp(services.clock.now()).into();
    let limit: SqlValue = i64::try_from(limit).unwrap_or(i64::MAX).into();
    let purge = |table: &str| -> Result<u64, DbError> {
        let result = services.db.execute(
            &format!(
                "DELETE FROM {table} WHERE rowid IN \
                 (SELECT rowid FROM {table} WHERE expires_at <= ?1 LIMIT ?2) RETURNING 1"
            ),
            &[now.clone(), limit.clone()],
        )?;
        Ok(u64::try_from(result.rows.len()).unwrap_or(u64::MAX))
    };
    Ok(PurgeCounts {
        sessions: purge("meet_session")?,
        bearer_tokens: purge("meet_bearer_token")?,
        cache: purge("meet_cache")?,
    })
}

/// Counts one request in the fixed window of `period_seconds` that `key`
/// is in, atomically; returns the count so far and when the window ends.
pub fn count_request(
    db: &dyn Database,
    key: &str,
    period_seconds: u64,
    now: OffsetDateTime,
) -> Result<(i64, OffsetDateTime), DbError> {
    let now_text = timestamp(now);
    let result = db.execute(
        "INSERT INTO meet_cache (key, value, expires_at, written_at) VALUES (?1, 1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET written_at = ?3, \
           value = CASE WHEN meet_cache.expires_at <= ?3 THEN 1 ELSE meet_cache.value + 1 END, \
           expires_at = CASE WHEN meet_cache.expires_at <= ?3 THEN excluded.expires_at \
                        ELSE meet_cache.expires_at END \
         RETURNING value, expires_at",
        &[
            key.into(),
            expiry(now, period_seconds).into(),
            now_text.into(),
        ],
    )?;
    let row = rows(&result)
        .next()
        .ok_or_else(|| DbError::Other("counting a request returned nothing".into()))?;
    let count = match row.value("value")? {
        SqlValue::Integer(count) => *count,
        SqlValue::Text(text) => text.parse().unwrap_or(i64::MAX),
        _ => i64::MAX,
    };
    let ends = parse_timestamp(&row.text("expires_at")?).unwrap_or(now);
    Ok((count, ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::migrated_database;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    #[test]
    fn values_are_read_once_and_expire() {
        let db = migrated_database().unwrap();
        set(&db, "k", "v", 10, NOW).unwrap();
        assert_eq!(take(&db, "k", NOW).unwrap().as_deref(), Some("v"));
        assert_eq!(take(&db, "k", NOW).unwrap(), None);
        set(&db, "k", "v", 10, NOW).unwrap();
        assert_eq!(
            take(&db, "k", NOW + time::Duration::seconds(10)).unwrap(),
            None
        );
    }

    #[test]
    fn request_counts_restart_with_each_window() {
        let db = migrated_database().unwrap();
        for expected in 1..=3 {
            assert_eq!(count_request(&db, "t", 60, NOW).unwrap().0, expected);
        }
        let (count, ends) = count_request(&db, "t", 60, NOW + time::Duration::seconds(59)).unwrap();
        assert_eq!((count, ends), (4, NOW + time::Duration::seconds(60)));
        let (count, _) = count_request(&db, "t", 60, NOW + time::Duration::seconds(60)).unwrap();
        assert_eq!(count, 1);
        purge_expired(&db, NOW + time::Duration::seconds(500)).unwrap();
        let left = db.execute("SELECT count(*) FROM meet_cache", &[]).unwrap();
        assert_eq!(left.rows[0][0], SqlValue::Integer(0));
    }
}

#[cfg(test)]
mod purge_tests {
    use super::*;
    use crate::native::{migrated_database, FixedClock, OsRandom, ScriptedHttp};
    use crate::settings::StaticVariables;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    fn count(db: &dyn Database, table: &str) -> i64 {
        let result = db
            .execute(&format!("SELECT count(*) AS n FROM {table}"), &[])
            .unwrap();
        let n = rows(&result).next().unwrap().integer("n").unwrap();
        n
    }

    #[test]
    fn expired_rows_go_by_bounded_steps_and_in_bulk() {
        let db = migrated_database().unwrap();
        db.execute_batch(
            "INSERT INTO meet_user (id, created_at, updated_at, sub) VALUES \
             ('00000000-0000-4000-8000-000000000001', 'x', 'x', 's')",
        )
        .unwrap();
        // 300 expired rows in each table (written long ago, no purge then).
        for n in 0..300 {
            let old = "2025-01-01T00:00:00.000000Z";
            db.execute(
                "INSERT INTO meet_cache (key, value, expires_at) VALUES (?, 1, ?)",
                &[format!("throttle_{n}").into(), old.into()],
            )
            .unwrap();
            db.execute(
                "INSERT INTO meet_bearer_token (token_hash, user_id, expires_at) \
                 VALUES (?, '00000000-0000-4000-8000-000000000001', ?)",
                &[format!("{n:064}").into(), old.into()],
            )
            .unwrap();
            db.execute(
                "INSERT INTO meet_session (key_hash, created_at, expires_at) VALUES (?, ?, ?)",
                &[
                    format!("{n:064}").into(),
                    "2024-01-01T00:00:00.000000Z".into(),
                    old.into(),
                ],
            )
            .unwrap();
        }
        // Every new row of the cache purges 20 expired rows, no more; an
        // update of an existing key adds no row and purges nothing.
        count_request(&db, "throttle_live", 60, NOW).unwrap();
        assert_eq!(count(&db, "meet_cache"), 300 - 20 + 1);
        set(&db, "room-creation-callback_x", "{}", 600, NOW).unwrap();
        assert_eq!(count(&db, "meet_cache"), 300 - 40 + 2);
        count_request(&db, "throttle_live", 60, NOW).unwrap();
        assert_eq!(count(&db, "meet_cache"), 300 - 40 + 2);

        let clock = FixedClock::new(NOW);
        let http = ScriptedHttp::default();
        let variables = StaticVariables::new(&[]);
        let services = crate::ports::Services {
            db: &db,
            http: &http,
            clock: &clock,
            random: &OsRandom,
            variables: &variables,
        };
        let first = purge_expired_rows(&services, 200).unwrap();
        assert_eq!(
            first,
            PurgeCounts {
                sessions: 200,
                bearer_tokens: 200,
                cache: 200
            }
        );
        let second = purge_expired_rows(&services, 200).unwrap();
        assert_eq!(
            (second.sessions, second.bearer_tokens, second.cache),
            (100, 100, 60)
        );
        assert_eq!(purge_expired_rows(&services, 200).unwrap().total(), 0);
        // The live values stay.
        assert_eq!(count(&db, "meet_cache"), 2);
    }
}
