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
        "INSERT INTO meet_cache (key, value, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        &[key.into(), value.into(), expiry(now, ttl_seconds).into()],
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
        "INSERT INTO meet_cache (key, value, expires_at) VALUES (?1, 1, ?2) \
         ON CONFLICT (key) DO UPDATE SET \
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
