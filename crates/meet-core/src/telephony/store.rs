//! All of telephony's SQL: PIN counters, rooms by PIN, failed-lookup
//! counters (in `meet_cache`).

use time::OffsetDateTime;

use crate::ports::{Database, DbError, SqlValue};
use crate::roles::AccessLevel;
use crate::sql::{parse_timestamp, rows, timestamp, Row};

/// Takes the next counter value of the least-used trunk of `trunks` for
/// PINs of `length` digits, in one atomic statement. Ties go to the trunk
/// listed first. Returns the trunk and the counter value (0 for a trunk's
/// first room).
pub fn take_pin_counter(
    db: &dyn Database,
    trunks: &[String],
    length: u32,
) -> Result<(String, u64), DbError> {
    let trunks_json = serde_json::to_string(trunks).map_err(|e| DbError::Other(e.to_string()))?;
    let result = db.execute(
        "INSERT INTO meet_pin_counter (namespace, length, next) \
         SELECT t.value, ?1, 1 FROM json_each(?2) t \
         LEFT JOIN meet_pin_counter c ON c.namespace = t.value AND c.length = ?1 \
         WHERE true ORDER BY coalesce(c.next, 0), t.key LIMIT 1 \
         ON CONFLICT (namespace, length) DO UPDATE SET next = next + 1 \
         RETURNING namespace, next - 1 AS counter",
        &[i64::from(length).into(), trunks_json.into()],
    )?;
    let row = rows(&result)
        .next()
        .ok_or_else(|| DbError::Other("taking a PIN counter returned nothing".into()))?;
    let counter = u64::try_from(row.integer("counter")?)
        .map_err(|_| DbError::Other("negative PIN counter".into()))?;
    Ok((row.text("namespace")?, counter))
}

/// A room as a telephony gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneRoom {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub access_level: AccessLevel,
    pub trunk: String,
    pub pin: Option<String>,
}

impl PhoneRoom {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "access_level": self.access_level.as_str(),
        })
    }
}

fn phone_room(row: &Row) -> Result<Option<PhoneRoom>, DbError> {
    let Some(id) = row.optional_text("id")? else {
        return Ok(None);
    };
    Ok(Some(PhoneRoom {
        id,
        slug: row.optional_text("slug")?.unwrap_or_default(),
        name: row.text("name")?,
        access_level: row
            .text("access_level")?
            .parse()
            .map_err(|_| DbError::Other("unknown access level in meet_room".into()))?,
        trunk: row.text("telephony_trunk")?,
        pin: row.optional_text("telephony_pin")?,
    }))
}

/// How many failed lookups a key has in its current window, and when that
/// window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub window_ends: OffsetDateTime,
}

fn failures(
    row: &Row,
    count: &str,
    ends: &str,
    now: OffsetDateTime,
) -> Result<Option<Failures>, DbError> {
    let count = match row.value(count)? {
        SqlValue::Integer(count) => *count,
        SqlValue::Null => return Ok(None),
        SqlValue::Text(text) => text.parse().unwrap_or(i64::MAX),
        _ => i64::MAX,
    };
    let window_ends = row
        .optional_text(ends)?
        .and_then(|text| parse_timestamp(&text))
        .unwrap_or(now);
    Ok(Some(Failures { count, window_ends }))
}

/// One statement: the caller's live failure count and the room whose PIN
/// is `pin` on `trunk` (a PIN of the default trunk `''`, given before trunk
/// namespaces were configured, is reachable from any trunk; the exact
/// trunk wins).
pub fn find_by_pin(
    db: &dyn Database,
    failure_key: &str,
    trunk: &str,
    pin: &str,
    now: OffsetDateTime,
) -> Result<(Option<Failures>, Option<PhoneRoom>), DbError> {
    let result = db.execute(
        "SELECT f.value AS failures, f.expires_at AS failures_end, \
                r.id, r.slug, r.name, r.access_level, r.telephony_trunk, r.telephony_pin \
         FROM (SELECT 1) \
         LEFT JOIN meet_cache f ON f.key = ?1 AND f.expires_at > ?4 \
         LEFT JOIN (SELECT * FROM meet_room WHERE telephony_pin = ?3 \
                      AND telephony_trunk IN (?2, '') \
                    ORDER BY telephony_trunk = ?2 DESC LIMIT 1) r ON true",
        &[
            failure_key.into(),
            trunk.into(),
            pin.into(),
            timestamp(now).into(),
        ],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok((None, None));
    };
    Ok((
        failures(&row, "failures", "failures_end", now)?,
        phone_room(&row)?,
    ))
}

/// The caller's live failure count and the room `room_id` (polling by
/// participant id), in one statement.
pub fn find_by_id(
    db: &dyn Database,
    failure_key: &str,
    room_id: &str,
    now: OffsetDateTime,
) -> Result<(Option<Failures>, Option<PhoneRoom>), DbError> {
    let result = db.execute(
        "SELECT f.value AS failures, f.expires_at AS failures_end, \
                r.id, r.slug, r.name, r.access_level, r.telephony_trunk, r.telephony_pin \
         FROM (SELECT 1) \
         LEFT JOIN meet_cache f ON f.key = ?1 AND f.expires_at > ?3 \
         LEFT JOIN meet_room r ON r.id = ?2",
        &[failure_key.into(), room_id.into(), timestamp(now).into()],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok((None, None));
    };
    Ok((
        failures(&row, "failures", "failures_end", now)?,
        phone_room(&row)?,
    ))
}

/// The telephony fields of one room (webhooks).
pub fn room(db: &dyn Database, room_id: &str) -> Result<Option<PhoneRoom>, DbError> {
    let result = db.execute(
        "SELECT id, slug, name, access_level, telephony_trunk, telephony_pin \
         FROM meet_room WHERE id = ?",
        &[room_id.into()],
    )?;
    let room = match rows(&result).next() {
        Some(row) => phone_room(&row),
        None => Ok(None),
    };
    room
}

/// Counts one failed lookup under each key (the caller's and the trunk's)
/// in fixed windows of `window_seconds`, in one statement; returns the
/// counts in the order of `keys`.
pub fn count_failures(
    db: &dyn Database,
    keys: &[&str; 2],
    window_seconds: u64,
    now: OffsetDateTime,
) -> Result<[Failures; 2], DbError> {
    let ends =
        timestamp(now + time::Duration::seconds(i64::try_from(window_seconds).unwrap_or(i64::MAX)));
    let result = db.execute(
        "INSERT INTO meet_cache (key, value, expires_at) VALUES (?1, 1, ?3), (?2, 1, ?3) \
         ON CONFLICT (key) DO UPDATE SET \
           value = CASE WHEN meet_cache.expires_at <= ?4 THEN 1 ELSE meet_cache.value + 1 END, \
           expires_at = CASE WHEN meet_cache.expires_at <= ?4 THEN excluded.expires_at \
                        ELSE meet_cache.expires_at END \
         RETURNING key, value, expires_at",
        &[
            keys[0].into(),
            keys[1].into(),
            ends.into(),
            timestamp(now).into(),
        ],
    )?;
    let mut counted = [Failures {
        count: 0,
        window_ends: now,
    }; 2];
    for row in rows(&result) {
        let key = row.text("key")?;
        if let Some(found) = failures(&row, "value", "expires_at", now)? {
            for (index, wanted) in keys.iter().enumerate() {
                if key == *wanted {
                    counted[index] = found;
                }
            }
        }
    }
    Ok(counted)
}

/// A live value of `meet_cache` (expired ones read as absent).
pub fn cached(
    db: &dyn Database,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, DbError> {
    let result = db.execute(
        "SELECT value FROM meet_cache WHERE key = ?1 AND expires_at > ?2",
        &[key.into(), timestamp(now).into()],
    )?;
    let value = match rows(&result).next() {
        Some(row) => Some(row.text("value")?),
        None => None,
    };
    Ok(value)
}
