//! All SQL of the lobby: `meet_lobby_entry` (migrations/0004_lobby.sql).
//! An entry past its `expires_at` is absent for every read here.

use time::OffsetDateTime;

use crate::ports::{Database, DbError, SqlValue};
use crate::sql::rows;

/// A participant's entry in a room's lobby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub room_id: String,
    pub participant_id: String,
    pub status: String,
    pub username: String,
    pub color: String,
}

/// Unix milliseconds, the unit of `expires_at`.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn expiry(now: OffsetDateTime, ttl_seconds: u64) -> i64 {
    millis(now).saturating_add(i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX))
}

fn entry_of(row: &crate::sql::Row) -> Result<Entry, DbError> {
    Ok(Entry {
        room_id: row.text("room_id")?,
        participant_id: row.text("participant_id")?,
        status: row.text("status")?,
        username: row.text("username")?,
        color: row.text("color")?,
    })
}

/// What one poll of `request-entry/` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// The room is not found.
    NoRoom,
    /// The room lets this caller in without the lobby; its id and the
    /// current entry, if any (not written).
    Bypass {
        room_id: String,
        entry: Option<Entry>,
    },
    /// The caller is in the lobby: the entry after this poll, and whether
    /// this poll created it (then the admins are to be notified).
    Lobby { entry: Entry, created: bool },
}

/// A new waiting entry, as the poll would create it.
pub struct Waiting<'a> {
    pub participant_id: &'a str,
    pub username: &'a str,
    pub color: &'a str,
    pub ttl_seconds: u64,
    /// A random token of this request (see `created_by`).
    pub request_token: &'a str,
}

/// One poll, in one statement when the caller waits in the lobby: creates
/// the waiting entry (absent or expired), refreshes a waiting entry's time
/// to live, leaves an accepted or denied one as it is. The lobby applies
/// to `restricted` rooms and, for anonymous callers, to `trusted` ones.
/// Otherwise (bypass, or no room) a second statement reads the room and
/// the entry. `room_column` is `id` or `slug`, `room_value` its value.
pub fn poll(
    db: &dyn Database,
    room_column: &str,
    room_value: &str,
    authenticated: bool,
    waiting: &Waiting,
    now: OffsetDateTime,
) -> Result<Poll, DbError> {
    let column = if room_column == "id" { "id" } else { "slug" };
    let now_ms = millis(now);
    let result = db.execute(
        &format!(
            "INSERT INTO meet_lobby_entry \
               (room_id, participant_id, status, username, color, expires_at, created_by) \
             SELECT r.id, ?2, 'waiting', ?3, ?4, ?5, ?6 FROM meet_room r \
             WHERE r.{column} = ?1 \
               AND (r.access_level = 'restricted' OR (r.access_level = 'trusted' AND NOT ?7)) \
             ON CONFLICT (room_id, participant_id) DO UPDATE SET \
               status = CASE WHEN meet_lobby_entry.expires_at <= ?8 THEN 'waiting' \
                        ELSE meet_lobby_entry.status END, \
               username = CASE WHEN meet_lobby_entry.expires_at <= ?8 THEN excluded.username \
                          ELSE meet_lobby_entry.username END, \
               color = CASE WHEN meet_lobby_entry.expires_at <= ?8 THEN excluded.color \
                       ELSE meet_lobby_entry.color END, \
               created_by = CASE WHEN meet_lobby_entry.expires_at <= ?8 THEN excluded.created_by \
                            ELSE meet_lobby_entry.created_by END, \
               expires_at = CASE WHEN meet_lobby_entry.expires_at <= ?8 \
                              OR meet_lobby_entry.status = 'waiting' THEN excluded.expires_at \
                            ELSE meet_lobby_entry.expires_at END \
             RETURNING room_id, participant_id, status, username, color, created_by = ?6 AS created"
        ),
        &[
            room_value.into(),
            waiting.participant_id.into(),
            waiting.username.into(),
            waiting.color.into(),
            expiry(now, waiting.ttl_seconds).into(),
            waiting.request_token.into(),
            authenticated.into(),
            now_ms.into(),
        ],
    )?;
    if let Some(row) = rows(&result).next() {
        return Ok(Poll::Lobby {
            entry: entry_of(&row)?,
            created: row.boolean("created")?,
        });
    }
    let result = db.execute(
        &format!(
            "SELECT r.id AS room_id, e.participant_id, e.status, e.username, e.color \
             FROM meet_room r LEFT JOIN meet_lobby_entry e \
               ON e.room_id = r.id AND e.participant_id = ?2 AND e.expires_at > ?3 \
             WHERE r.{column} = ?1"
        ),
        &[
            room_value.into(),
            waiting.participant_id.into(),
            now_ms.into(),
        ],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok(Poll::NoRoom);
    };
    let entry = match row.optional_text("status")? {
        Some(_) => Some(entry_of(&row)?),
        None => None,
    };
    Ok(Poll::Bypass {
        room_id: row.text("room_id")?,
        entry,
    })
}

/// Undoes the creation of a waiting entry whose notification failed, so
/// that the next poll creates it again (only if this request created it).
pub fn forget_created(
    db: &dyn Database,
    room_id: &str,
    participant_id: &str,
    request_token: &str,
) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM meet_lobby_entry WHERE room_id = ?1 AND participant_id = ?2 AND created_by = ?3",
        &[room_id.into(), participant_id.into(), request_token.into()],
    )?;
    Ok(())
}

/// The waiting participants of a room (one indexed range of the primary key).
pub fn waiting(
    db: &dyn Database,
    room_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<Entry>, DbError> {
    let result = db.execute(
        "SELECT room_id, participant_id, status, username, color FROM meet_lobby_entry \
         WHERE room_id = ?1 AND status = 'waiting' AND expires_at > ?2",
        &[room_id.into(), millis(now).into()],
    )?;
    rows(&result).map(|row| entry_of(&row)).collect()
}

/// An admin's decision: rewrites a present entry's status and time to live
/// (username and colour kept). `false` when there is no such entry.
pub fn decide(
    db: &dyn Database,
    room_id: &str,
    participant_id: &str,
    status: &str,
    ttl_seconds: u64,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let result = db.execute(
        "UPDATE meet_lobby_entry SET status = ?3, expires_at = ?4 \
         WHERE room_id = ?1 AND participant_id = ?2 AND expires_at > ?5 RETURNING 1 AS updated",
        &[
            room_id.into(),
            participant_id.into(),
            status.into(),
            expiry(now, ttl_seconds).into(),
            millis(now).into(),
        ],
    )?;
    Ok(!result.rows.is_empty())
}

/// Writes an entry whatever was there (for other features that hold
/// participants in the lobby, e.g. telephony).
pub fn put(
    db: &dyn Database,
    entry: &Entry,
    ttl_seconds: u64,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO meet_lobby_entry \
           (room_id, participant_id, status, username, color, expires_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '') \
         ON CONFLICT (room_id, participant_id) DO UPDATE SET status = excluded.status, \
           username = excluded.username, color = excluded.color, expires_at = excluded.expires_at",
        &[
            entry.room_id.as_str().into(),
            entry.participant_id.as_str().into(),
            entry.status.as_str().into(),
            entry.username.as_str().into(),
            entry.color.as_str().into(),
            expiry(now, ttl_seconds).into(),
        ],
    )?;
    Ok(())
}

/// Deletes every entry of a room (LiveKit `room_finished`, lobby.md §9).
pub fn clear_room(db: &dyn Database, room_id: &str) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM meet_lobby_entry WHERE room_id = ?1",
        &[SqlValue::from(room_id)],
    )?;
    Ok(())
}
