//! All SQL of the lobby: `meet_lobby_entry` (migrations/0004_lobby.sql).
//! An entry past its `expires_at` is absent for every read here.

use time::OffsetDateTime;

use crate::auth::store::{CallerQuery, CallerRecord};
use crate::ports::{Database, DbError, SqlValue};
use crate::roles::{role_of_rank, sql_rank_of_user, Role};
use crate::rooms::store::RoomKey;
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
    /// The entry's poll throttle refused this poll (its time to live was
    /// not refreshed): the window ends in `retry_after_ms`.
    Throttled { retry_after_ms: i64 },
}

/// The throttle counted in the entry: at most `requests` polls per window of
/// `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollRate {
    pub requests: i64,
    pub period_ms: i64,
}

/// A new waiting entry, as the poll would create it.
pub struct Waiting<'a> {
    pub participant_id: &'a str,
    pub username: &'a str,
    pub color: &'a str,
    pub ttl_seconds: u64,
    /// A random token of this request (see `created_by`).
    pub request_token: &'a str,
    /// The throttle to enforce on an existing entry (anonymous polls with
    /// a lobby cookie), `None` for callers who are not throttled.
    pub rate: Option<PollRate>,
    /// The participant id was made up by this request: it can have no
    /// entry yet, so the poll goes straight to creating one.
    pub new_participant: bool,
}

/// One poll. The lobby applies to `restricted` rooms and, for anonymous
/// callers, to `trusted` ones; the caller is resolved by the same
/// statements (`caller`), and with `require_caller` nothing is written
/// unless the caller row exists (`None` means it did not: the full path
/// must tell why).
///
/// A waiting guest polls every second, so the poll of a live entry is one
/// `UPDATE`, the cheapest statement that can do it: every request prepares
/// its statements afresh (a new connection per component instance), and
/// the upsert that creates entries takes several times longer to prepare
/// than the write itself. When no live entry was there, a second statement
/// (the first for a new participant) creates the waiting entry (absent or
/// expired); when the lobby does not apply (bypass, or no room: polls the
/// frontend does not make, it polls only when the room's retrieve said the
/// lobby applies), a third reads the room and the entry.
pub fn poll(
    db: &dyn Database,
    caller: &CallerQuery,
    require_caller: bool,
    key: &RoomKey,
    waiting: &Waiting,
    now: OffsetDateTime,
) -> Result<Option<(Option<CallerRecord>, Poll)>, DbError> {
    if !waiting.new_participant {
        if let Some(polled) = poll_live_entry(db, caller, require_caller, key, waiting, now)? {
            return Ok(Some(polled));
        }
    }
    create_or_read(db, caller, require_caller, key, waiting, now)
}

/// Whether the lobby applies to the caller in room `r`, as an SQL
/// condition (lobby.md §1).
fn lobby_applies(caller: &CallerQuery) -> String {
    format!(
        "(r.access_level = 'restricted' OR (r.access_level = 'trusted' AND NOT {}))",
        caller.exists()
    )
}

/// `WHERE` of the room whose lobby applies to the caller, by `column`
/// bound to `?4`, with `?5` telling whether the caller row is required.
fn room_with_lobby(column: &str, caller: &CallerQuery) -> String {
    format!(
        "r.{column} = ?4 AND (NOT ?5 OR {}) AND {}",
        caller.exists(),
        lobby_applies(caller)
    )
}

/// The poll of a live entry where the lobby applies, in one `UPDATE`:
/// counts the poll in the entry's throttle window and refreshes a waiting
/// entry's time to live, unless the throttle refuses the poll (then the
/// counter runs on past the limit until the window ends, which refuses
/// the same polls as not counting them). `None` when there is no such
/// entry (nothing was written).
fn poll_live_entry(
    db: &dyn Database,
    caller: &CallerQuery,
    require_caller: bool,
    key: &RoomKey,
    waiting: &Waiting,
    now: OffsetDateTime,
) -> Result<Option<(Option<CallerRecord>, Poll)>, DbError> {
    let (column, value) = key_column(key);
    let refused = "?10 IS NOT NULL AND polls_window_ends > ?8 AND polls >= ?10";
    let result = db.execute(
        &format!(
            "WITH {} UPDATE meet_lobby_entry SET \
               expires_at = CASE WHEN status = 'waiting' AND NOT ({refused}) THEN ?7 \
                            ELSE expires_at END, \
               polls = CASE WHEN polls_window_ends <= ?8 THEN 1 ELSE polls + 1 END, \
               polls_window_ends = CASE WHEN polls_window_ends <= ?8 THEN ?8 + ?9 \
                                   ELSE polls_window_ends END \
             WHERE room_id = (SELECT r.id FROM meet_room r WHERE {}) \
               AND participant_id = ?6 AND expires_at > ?8 \
             RETURNING room_id, participant_id, status, username, color, polls_window_ends, \
               ?10 IS NOT NULL AND polls > ?10 AS refused, {}",
            caller.cte,
            room_with_lobby(column, caller),
            caller.returning_column(),
        ),
        &caller.with_params(vec![
            value.as_str().into(),
            require_caller.into(),
            waiting.participant_id.into(),
            expiry(now, waiting.ttl_seconds).into(),
            millis(now).into(),
            waiting.rate.map_or(0, |rate| rate.period_ms).into(),
            waiting.rate.map(|rate| rate.requests).into(),
        ]),
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok(None);
    };
    let poll = if row.boolean("refused")? {
        let window_ends = row.integer("polls_window_ends")?;
        Poll::Throttled {
            retry_after_ms: window_ends.saturating_sub(millis(now)).max(0),
        }
    } else {
        Poll::Lobby {
            entry: entry_of(&row)?,
            created: false,
        }
    };
    Ok(Some((CallerRecord::from_returning(&row)?, poll)))
}

/// The `meet_room` column of `key` and its value.
fn key_column(key: &RoomKey) -> (&'static str, &String) {
    match key {
        RoomKey::Id(id) => ("id", id),
        RoomKey::Slug(slug) => ("slug", slug),
    }
}

/// The poll without a live entry: creates the waiting entry in one
/// statement when the lobby applies (an entry created meanwhile by a
/// concurrent poll is polled as [`poll_live_entry`] would), else reads the
/// room and the entry.
fn create_or_read(
    db: &dyn Database,
    caller: &CallerQuery,
    require_caller: bool,
    key: &RoomKey,
    waiting: &Waiting,
    now: OffsetDateTime,
) -> Result<Option<(Option<CallerRecord>, Poll)>, DbError> {
    let (column, value) = key_column(key);
    let now_ms = millis(now);
    let result = db.execute(
        &format!(
            "WITH {} INSERT INTO meet_lobby_entry \
               (room_id, participant_id, status, username, color, expires_at, created_by, \
                polls, polls_window_ends) \
             SELECT r.id, ?6, 'waiting', ?7, ?8, ?9, ?10, 1, ?11 + ?13 FROM meet_room r \
             WHERE {} \
             ON CONFLICT (room_id, participant_id) DO UPDATE SET \
               status = CASE WHEN meet_lobby_entry.expires_at <= ?11 THEN 'waiting' \
                        ELSE meet_lobby_entry.status END, \
               username = CASE WHEN meet_lobby_entry.expires_at <= ?11 THEN excluded.username \
                          ELSE meet_lobby_entry.username END, \
               color = CASE WHEN meet_lobby_entry.expires_at <= ?11 THEN excluded.color \
                       ELSE meet_lobby_entry.color END, \
               created_by = CASE WHEN meet_lobby_entry.expires_at <= ?11 THEN excluded.created_by \
                            ELSE meet_lobby_entry.created_by END, \
               expires_at = CASE WHEN meet_lobby_entry.expires_at <= ?11 \
                              OR meet_lobby_entry.status = 'waiting' THEN excluded.expires_at \
                            ELSE meet_lobby_entry.expires_at END, \
               polls = CASE WHEN meet_lobby_entry.polls_window_ends <= ?11 THEN 1 \
                       ELSE meet_lobby_entry.polls + 1 END, \
               polls_window_ends = CASE WHEN meet_lobby_entry.polls_window_ends <= ?11 \
                                   THEN excluded.polls_window_ends \
                                   ELSE meet_lobby_entry.polls_window_ends END \
             WHERE ?12 IS NULL OR meet_lobby_entry.polls_window_ends <= ?11 \
               OR meet_lobby_entry.polls < ?12 \
             RETURNING room_id, participant_id, status, username, color, \
               created_by = ?10 AS created, {}",
            caller.cte,
            room_with_lobby(column, caller),
            caller.returning_column(),
        ),
        &caller.with_params(vec![
            value.as_str().into(),
            require_caller.into(),
            waiting.participant_id.into(),
            waiting.username.into(),
            waiting.color.into(),
            expiry(now, waiting.ttl_seconds).into(),
            waiting.request_token.into(),
            now_ms.into(),
            waiting.rate.map(|rate| rate.requests).into(),
            waiting.rate.map_or(0, |rate| rate.period_ms).into(),
        ]),
    )?;
    if let Some(row) = rows(&result).next() {
        let poll = Poll::Lobby {
            entry: entry_of(&row)?,
            created: row.boolean("created")?,
        };
        return Ok(Some((CallerRecord::from_returning(&row)?, poll)));
    }
    let result = db.execute(
        &format!(
            "WITH {} SELECT caller.*, r.id AS found_room_id, e.room_id, e.participant_id, \
               e.status, e.username, e.color, e.polls_window_ends, {} AS lobby_applies \
             FROM (SELECT 1) LEFT JOIN caller ON 1 LEFT JOIN meet_room r ON r.{column} = ?4 \
             LEFT JOIN meet_lobby_entry e \
               ON e.room_id = r.id AND e.participant_id = ?5 AND e.expires_at > ?6",
            caller.cte,
            lobby_applies(caller),
        ),
        &caller.with_params(vec![
            value.as_str().into(),
            waiting.participant_id.into(),
            now_ms.into(),
        ]),
    )?;
    let Some(row) = rows(&result).next() else {
        return Err(DbError::Other("the lobby poll read returned no row".into()));
    };
    let record = CallerRecord::from_row(&row)?;
    if require_caller && record.is_none() {
        return Ok(None);
    }
    let Some(room_id) = row.optional_text("found_room_id")? else {
        return Ok(Some((record, Poll::NoRoom)));
    };
    let entry = match row.optional_text("status")? {
        Some(_) => Some(entry_of(&row)?),
        None => None,
    };
    // The lobby applies yet the upsert wrote nothing: its throttle refused.
    if row.boolean("lobby_applies")? {
        let window_ends = row.value("polls_window_ends")?.as_i64().unwrap_or(now_ms);
        let retry_after_ms = window_ends.saturating_sub(now_ms).max(0);
        return Ok(Some((record, Poll::Throttled { retry_after_ms })));
    }
    Ok(Some((record, Poll::Bypass { room_id, entry })))
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

/// A room as `waiting-participants/` needs it: the caller's role on it and,
/// when the caller may see them, its waiting participants.
#[derive(Debug, Clone, PartialEq)]
pub struct LobbyView {
    pub room_id: String,
    pub role: Option<Role>,
    /// Read only for administrators and owners of a room with a lobby.
    pub waiting: Vec<Entry>,
}

/// The caller, the room of `key` and its waiting participants in one
/// statement (the caller folded in through [`CallerQuery`]).
pub fn waiting_with_caller(
    db: &dyn Database,
    caller: &CallerQuery,
    key: &RoomKey,
    now: OffsetDateTime,
) -> Result<(Option<CallerRecord>, Option<LobbyView>), DbError> {
    let (column, value) = key_column(key);
    let result = db.execute(
        &format!(
            "WITH {}, room AS ( \
               SELECT r.id, r.access_level, {} AS role_rank FROM meet_room r WHERE r.{column} = ?4) \
             SELECT caller.*, room.id AS room_id, room.role_rank, \
               CASE WHEN room.role_rank >= {} AND room.access_level != 'public' THEN ( \
                 SELECT json_group_array(json_object('room_id', e.room_id, \
                   'participant_id', e.participant_id, 'status', e.status, \
                   'username', e.username, 'color', e.color)) \
                 FROM meet_lobby_entry e \
                 WHERE e.room_id = room.id AND e.status = 'waiting' AND e.expires_at > ?5) \
               END AS waiting \
             FROM (SELECT 1) LEFT JOIN caller ON 1 LEFT JOIN room ON 1",
            caller.cte,
            sql_rank_of_user("r.id", "(SELECT user_id FROM caller)"),
            Role::Administrator.rank(),
        ),
        &caller.with_params(vec![value.as_str().into(), millis(now).into()]),
    )?;
    let Some(row) = rows(&result).next() else {
        return Err(DbError::Other("the lobby lookup returned no row".into()));
    };
    let record = CallerRecord::from_row(&row)?;
    let Some(room_id) = row.optional_text("room_id")? else {
        return Ok((record, None));
    };
    let waiting = match row.optional_text("waiting")? {
        Some(text) => serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .map_err(|error| DbError::Other(format!("waiting participants: {error}")))?
            .iter()
            .map(entry_of_json)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok((
        record,
        Some(LobbyView {
            room_id,
            role: role_of_rank(row.value("role_rank")?),
            waiting,
        }),
    ))
}

fn entry_of_json(item: &serde_json::Value) -> Result<Entry, DbError> {
    let field = |name: &str| {
        item[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| DbError::Other(format!("waiting participant without {name}")))
    };
    Ok(Entry {
        room_id: field("room_id")?,
        participant_id: field("participant_id")?,
        status: field("status")?,
        username: field("username")?,
        color: field("color")?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use crate::native::migrated_database;
    use time::Duration;

    const ROOM: &str = "00000000-0000-4000-8000-000000000001";

    /// The polls' clock starts now: the purge trigger deletes entries that
    /// expired by the database's own clock.
    fn t0() -> OffsetDateTime {
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
    }

    fn restricted_room() -> impl Database {
        let db = migrated_database().unwrap();
        db.execute(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug, access_level) \
             VALUES (?1, 'now', 'now', 'Lobby', 'lobby', 'restricted')",
            &[ROOM.into()],
        )
        .unwrap();
        db
    }

    /// An anonymous guest's poll with a cookie at `t0 + seconds`.
    fn poll_at(
        db: &dyn Database,
        t0: OffsetDateTime,
        seconds: i64,
        ttl_seconds: u64,
        rate: Option<PollRate>,
    ) -> Poll {
        let at = t0 + Duration::seconds(seconds);
        let request_token = format!("request at {seconds}");
        let waiting = Waiting {
            participant_id: "0123456789abcdef0123456789abcdef",
            username: "Guest",
            color: "#123456",
            ttl_seconds,
            request_token: &request_token,
            rate,
            new_participant: false,
        };
        let caller = CallerQuery::of(&Credential::Anonymous, None, at);
        let key = RoomKey::Slug("lobby".into());
        poll(db, &caller, false, &key, &waiting, at)
            .unwrap()
            .unwrap()
            .1
    }

    fn expires_at(db: &dyn Database) -> i64 {
        let result = db
            .execute("SELECT expires_at FROM meet_lobby_entry", &[])
            .unwrap();
        let expires_at = rows(&result).next().unwrap().integer("expires_at").unwrap();
        expires_at
    }

    fn created(poll: Poll) -> bool {
        match poll {
            Poll::Lobby { entry, created } => {
                assert_eq!(
                    (entry.status.as_str(), entry.room_id.as_str()),
                    ("waiting", ROOM)
                );
                created
            }
            other => panic!("not a lobby poll: {other:?}"),
        }
    }

    #[test]
    fn the_entry_counts_polls_per_window_and_a_refused_poll_does_not_refresh_it() {
        let db = restricted_room();
        let rate = Some(PollRate {
            requests: 2,
            period_ms: 10_000,
        });
        let t0 = t0();
        let at = |seconds: i64| millis(t0 + Duration::seconds(seconds));
        assert!(created(poll_at(&db, t0, 0, 60, rate)));
        assert!(!created(poll_at(&db, t0, 1, 60, rate)));
        assert_eq!(expires_at(&db), at(61), "refreshed");
        for (second, retry_after_ms) in [(2, 8_000), (3, 7_000)] {
            assert_eq!(
                poll_at(&db, t0, second, 60, rate),
                Poll::Throttled { retry_after_ms }
            );
            assert_eq!(expires_at(&db), at(61), "a refused poll refreshes nothing");
        }
        // The next window counts afresh.
        assert!(!created(poll_at(&db, t0, 10, 60, rate)));
        assert!(!created(poll_at(&db, t0, 11, 60, rate)));
        assert_eq!(expires_at(&db), at(71));
        assert_eq!(
            poll_at(&db, t0, 12, 60, rate),
            Poll::Throttled {
                retry_after_ms: 8_000
            }
        );
    }

    #[test]
    fn an_expired_entry_is_created_again_and_callers_without_a_rate_are_not_counted() {
        let db = restricted_room();
        let t0 = t0();
        assert!(created(poll_at(&db, t0, 0, 3, None)));
        assert!(!created(poll_at(&db, t0, 2, 3, None)));
        assert!(!created(poll_at(&db, t0, 4, 3, None)), "refreshed at 2 s");
        assert!(created(poll_at(&db, t0, 8, 3, None)), "expired at 7 s");
        for second in 9..20 {
            assert!(!created(poll_at(&db, t0, second, 3, None)));
        }
    }
}
