//! All the SQL of recordings: `meet_recording`, `meet_recording_access`
//! and the notification outbox `meet_recording_delivery` (migration 0005).
//! One guarded statement per step; transitions name their predecessors.

use serde_json::Value;
use time::OffsetDateTime;

use crate::ports::{Database, DbError, SqlValue};
use crate::recordings::model::{Mode, Status};
use crate::roles::{role_of_rank, sql_rank, Role};
use crate::rooms::store::RoomKey;
use crate::sql::{parse_timestamp, rows, timestamp, Row};

fn status_of(row: &Row, column: &str) -> Result<Status, DbError> {
    row.text(column)?
        .parse()
        .map_err(|()| DbError::Other(format!("unknown recording status in {column}")))
}

fn mode_of(row: &Row, column: &str) -> Result<Mode, DbError> {
    row.text(column)?
        .parse()
        .map_err(|()| DbError::Other(format!("unknown recording mode in {column}")))
}

fn time_of(row: &Row, column: &str) -> Result<OffsetDateTime, DbError> {
    parse_timestamp(&row.text(column)?)
        .ok_or_else(|| DbError::Other(format!("unreadable timestamp in {column}")))
}

fn int(value: u64) -> SqlValue {
    i64::try_from(value).unwrap_or(i64::MAX).into()
}

/// The caller's highest role on recording `recording` (SQL expressions).
fn sql_rank_on_recording(recording: &str, user: &str) -> String {
    format!(
        "(SELECT max({}) FROM meet_recording_access ra WHERE ra.recording_id = {recording} AND ra.user_id = {user})",
        sql_rank("ra.role")
    )
}

/// A recording in progress on a room (at most one, by the partial index).
#[derive(Debug, Clone, PartialEq)]
pub struct InProgress {
    pub id: String,
    pub status: Status,
    pub worker_id: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A room seen by the caller of start/stop-recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRoom {
    pub id: String,
    pub slug: String,
    pub role: Option<Role>,
    pub in_progress: Option<InProgress>,
}

/// The room of a `rooms/{id}/…-recording/` URL, the caller's role on it and
/// its recording in progress: one statement.
pub fn find_room(
    db: &dyn Database,
    key: &RoomKey,
    user_id: &str,
) -> Result<Option<RecordingRoom>, DbError> {
    let (condition, value) = match key {
        RoomKey::Id(id) => ("r.id = ?2", id),
        RoomKey::Slug(slug) => ("r.slug = ?2", slug),
    };
    let rank = crate::roles::sql_rank_of_user("r.id", "?1");
    let in_progress = Status::sql_list(&[Status::Initiated, Status::Active]);
    let result = db.execute(
        &format!(
            "SELECT r.id, r.slug, {rank} AS role_rank, \
                    g.id AS rec_id, g.status AS rec_status, g.worker_id AS rec_worker, \
                    g.created_at AS rec_created_at \
             FROM meet_room r \
             LEFT JOIN meet_recording g ON g.room_id = r.id AND g.status IN ({in_progress}) \
             WHERE {condition} LIMIT 1"
        ),
        &[user_id.into(), value.as_str().into()],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok(None);
    };
    let in_progress = match row.optional_text("rec_id")? {
        Some(id) => Some(InProgress {
            id,
            status: status_of(&row, "rec_status")?,
            worker_id: row.optional_text("rec_worker")?,
            created_at: time_of(&row, "rec_created_at")?,
        }),
        None => None,
    };
    Ok(Some(RecordingRoom {
        id: row.text("id")?,
        slug: row.optional_text("slug")?.unwrap_or_default(),
        role: role_of_rank(row.value("role_rank")?),
        in_progress,
    }))
}

/// Why a recording could not be created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CreateError {
    /// `unique_initiated_or_active_recording_per_room` refused it.
    #[error("the room already has a recording in progress")]
    InProgress,
    #[error(transparent)]
    Db(DbError),
}

/// Creates an `initiated` recording and its starter's `owner` access in one
/// statement (the `meet_recording_creation` view).
pub fn create(
    db: &dyn Database,
    id: &str,
    room_id: &str,
    mode: Mode,
    owner_id: &str,
    owner_access_id: &str,
    now: OffsetDateTime,
) -> Result<(), CreateError> {
    db.execute(
        "INSERT INTO meet_recording_creation (id, created_at, room_id, mode, owner_access_id, owner_id) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            timestamp(now).into(),
            room_id.into(),
            mode.as_str().into(),
            owner_access_id.into(),
            owner_id.into(),
        ],
    )
    .map(|_| ())
    .map_err(|error| match error {
        DbError::Unique { ref table_column }
            if table_column == "meet_recording.room_id"
                || table_column.contains("unique_initiated_or_active_recording_per_room") =>
        {
            CreateError::InProgress
        }
        other => CreateError::Db(other),
    })
}

/// Moves recording `id` to `to` if it is in one of `from` (and, when given,
/// still has worker `worker_id`). Whether it moved.
pub fn transition(
    db: &dyn Database,
    id: &str,
    from: &[Status],
    to: Status,
    worker_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let from = Status::sql_list(from);
    let result = db.execute(
        &format!(
            "UPDATE meet_recording SET status = ?1, updated_at = ?2 \
             WHERE id = ?3 AND status IN ({from}) AND (?4 IS NULL OR worker_id = ?4) RETURNING id"
        ),
        &[
            to.as_str().into(),
            timestamp(now).into(),
            id.into(),
            worker_id.map(str::to_string).into(),
        ],
    )?;
    Ok(!result.rows.is_empty())
}

/// `initiated` → `active` with the egress id.
pub fn mark_started(
    db: &dyn Database,
    id: &str,
    worker_id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let result = db.execute(
        "UPDATE meet_recording SET status = 'active', worker_id = ?1, updated_at = ?2 \
         WHERE id = ?3 AND status = 'initiated' RETURNING id",
        &[worker_id.into(), timestamp(now).into(), id.into()],
    )?;
    Ok(!result.rows.is_empty())
}

/// A recording moved by an egress event.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub id: String,
    pub status: Status,
}

/// Moves the recording of egress `worker_id` to `to` when its status is one
/// of `from` (so late or repeated events change nothing).
pub fn transition_by_worker(
    db: &dyn Database,
    worker_id: &str,
    from: &[Status],
    to: Status,
    now: OffsetDateTime,
) -> Result<Option<Moved>, DbError> {
    let from = Status::sql_list(from);
    let result = db.execute(
        &format!(
            "UPDATE meet_recording SET status = ?1, updated_at = ?2 \
             WHERE worker_id = ?3 AND status IN ({from}) RETURNING id, status"
        ),
        &[to.as_str().into(), timestamp(now).into(), worker_id.into()],
    )?;
    let moved = rows(&result)
        .next()
        .map(|row| {
            Ok::<_, DbError>(Moved {
                id: row.text("id")?,
                status: status_of(&row, "status")?,
            })
        })
        .transpose()?;
    Ok(moved)
}

/// A recording with its room, as the API renders it, and the caller's role.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingView {
    pub id: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub status: Status,
    pub mode: Mode,
    pub room_id: String,
    pub room_name: String,
    pub room_slug: String,
    pub room_access_level: String,
    pub role: Option<Role>,
}

const VIEW_COLUMNS: &str = "g.id, g.created_at, g.updated_at, g.status, g.mode, \
    r.id AS room_id, r.name AS room_name, r.slug AS room_slug, r.access_level AS room_access_level";

fn view_from_row(row: &Row) -> Result<RecordingView, DbError> {
    Ok(RecordingView {
        id: row.text("id")?,
        created_at: time_of(row, "created_at")?,
        updated_at: time_of(row, "updated_at")?,
        status: status_of(row, "status")?,
        mode: mode_of(row, "mode")?,
        room_id: row.text("room_id")?,
        room_name: row.text("room_name")?,
        room_slug: row.optional_text("room_slug")?.unwrap_or_default(),
        room_access_level: row.text("room_access_level")?,
        role: role_of_rank(row.value("role_rank")?),
    })
}

/// One page of the recordings `user_id` holds any access to, newest first.
pub fn list_for_user(
    db: &dyn Database,
    user_id: &str,
    limit: u64,
    offset: u64,
) -> Result<(u64, Vec<RecordingView>), DbError> {
    let result = db.execute(
        &format!(
            "WITH mine AS ( \
               SELECT recording_id, max({rank}) AS role_rank FROM meet_recording_access \
               WHERE user_id = ?1 GROUP BY recording_id), \
             page AS ( \
               SELECT g.id, mine.role_rank, count(*) OVER () AS total \
               FROM mine JOIN meet_recording g ON g.id = mine.recording_id \
               ORDER BY g.created_at DESC, g.id DESC LIMIT ?2 OFFSET ?3) \
             SELECT {VIEW_COLUMNS}, page.role_rank, page.total \
             FROM page JOIN meet_recording g ON g.id = page.id JOIN meet_room r ON r.id = g.room_id \
             ORDER BY g.created_at DESC, g.id DESC",
            rank = sql_rank("role"),
        ),
        &[user_id.into(), int(limit), int(offset)],
    )?;
    let mut total = 0;
    let mut views = Vec::new();
    for row in rows(&result) {
        total = u64::try_from(row.integer("total")?).unwrap_or(0);
        views.push(view_from_row(&row)?);
    }
    Ok((total, views))
}

/// Recording `id` with the caller's role on it (`None` role: no access).
pub fn find_for_user(
    db: &dyn Database,
    id: &str,
    user_id: &str,
) -> Result<Option<RecordingView>, DbError> {
    let result = db.execute(
        &format!(
            "SELECT {VIEW_COLUMNS}, {rank} AS role_rank \
             FROM meet_recording g JOIN meet_room r ON r.id = g.room_id WHERE g.id = ?2",
            rank = sql_rank_on_recording("g.id", "?1"),
        ),
        &[user_id.into(), id.into()],
    )?;
    let view = rows(&result)
        .next()
        .map(|row| view_from_row(&row))
        .transpose();
    view
}

/// Deletes recording `id` if its status is final. Whether it was deleted.
pub fn delete_final(db: &dyn Database, id: &str) -> Result<bool, DbError> {
    let result = db.execute(
        &format!(
            "DELETE FROM meet_recording WHERE id = ?1 AND status IN ({}) RETURNING id",
            Status::sql_list(&Status::final_statuses())
        ),
        &[id.into()],
    )?;
    Ok(!result.rows.is_empty())
}

/// What saving a recording found.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    /// Saved; its deliveries are owed (the database created them).
    Saved,
    NotFound,
    /// Not in a savable status.
    NotSavable,
}

/// `active|stopped` → `saved`; the `meet_recording_saved` trigger creates
/// the owners' deliveries in the same statement.
pub fn save(db: &dyn Database, id: &str, now: OffsetDateTime) -> Result<SaveOutcome, DbError> {
    let result = db.execute(
        "UPDATE meet_recording SET status = 'saved', updated_at = ?1 \
         WHERE id = ?2 AND status IN ('active', 'stopped') RETURNING id",
        &[timestamp(now).into(), id.into()],
    )?;
    if !result.rows.is_empty() {
        return Ok(SaveOutcome::Saved);
    }
    let found = db.execute(
        "SELECT status FROM meet_recording WHERE id = ?1",
        &[id.into()],
    )?;
    Ok(if found.rows.is_empty() {
        SaveOutcome::NotFound
    } else {
        SaveOutcome::NotSavable
    })
}

/// Recording `id` as media access needs it: mode, status, caller's role.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecording {
    pub mode: Mode,
    pub status: Status,
    pub role: Option<Role>,
}

pub fn find_for_media(
    db: &dyn Database,
    id: &str,
    user_id: &str,
) -> Result<Option<MediaRecording>, DbError> {
    let result = db.execute(
        &format!(
            "SELECT g.mode, g.status, {rank} AS role_rank FROM meet_recording g WHERE g.id = ?2",
            rank = sql_rank_on_recording("g.id", "?1"),
        ),
        &[user_id.into(), id.into()],
    )?;
    let found = rows(&result)
        .next()
        .map(|row| {
            Ok::<_, DbError>(MediaRecording {
                mode: mode_of(&row, "mode")?,
                status: status_of(&row, "status")?,
                role: role_of_rank(row.value("role_rank")?),
            })
        })
        .transpose()?;
    Ok(found)
}

// ---- The notification outbox.

/// A claimed delivery, ready to attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub recording_id: String,
    pub kind: String,
    pub payload: Value,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
}

/// Claims up to `limit` due deliveries (of one recording, or any) for
/// `claim` until `lease_until`: one statement, so two workers never hold
/// the same delivery.
pub fn claim_deliveries(
    db: &dyn Database,
    recording_id: Option<&str>,
    claim: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<Delivery>, DbError> {
    let now_text = timestamp(now);
    let result = db.execute(
        "UPDATE meet_recording_delivery SET claim = ?1, claimed_until = ?2, attempts = attempts + 1 \
         WHERE id IN ( \
           SELECT id FROM meet_recording_delivery \
           WHERE status = 'pending' AND next_attempt_at <= ?3 \
             AND (claimed_until IS NULL OR claimed_until < ?3) \
             AND (?4 IS NULL OR recording_id = ?4) \
           ORDER BY next_attempt_at, id LIMIT ?5) \
         RETURNING id, recording_id, kind, payload, attempts, created_at",
        &[
            claim.into(),
            timestamp(lease_until).into(),
            now_text.into(),
            recording_id.map(str::to_string).into(),
            int(limit),
        ],
    )?;
    let mut deliveries = Vec::new();
    for row in rows(&result) {
        deliveries.push(Delivery {
            id: row.integer("id")?,
            recording_id: row.text("recording_id")?,
            kind: row.text("kind")?,
            payload: serde_json::from_str(&row.text("payload")?)
                .map_err(|error| DbError::Other(format!("delivery payload: {error}")))?,
            attempts: row.integer("attempts")?,
            created_at: time_of(&row, "created_at")?,
        });
    }
    deliveries.sort_by_key(|delivery| delivery.id);
    Ok(deliveries)
}

/// What became of one attempted delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Delivered,
    /// Failed; try again at this time.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Failed for the last time.
    Abandoned {
        error: String,
    },
}

/// Records the results of the deliveries held by `claim`, in one
/// statement; the `meet_recording_delivery_completed` trigger completes a
/// recording whose deliveries all succeeded.
pub fn finish_deliveries(
    db: &dyn Database,
    claim: &str,
    results: &[(i64, AttemptResult)],
    now: OffsetDateTime,
) -> Result<(), DbError> {
    if results.is_empty() {
        return Ok(());
    }
    let now_text = timestamp(now);
    let items: Vec<Value> = results
        .iter()
        .map(|(id, result)| match result {
            AttemptResult::Delivered => serde_json::json!({"id": id, "status": "delivered"}),
            AttemptResult::Retry { at, error } => serde_json::json!({
                "id": id, "status": "pending", "next": timestamp(*at), "error": error,
            }),
            AttemptResult::Abandoned { error } => {
                serde_json::json!({"id": id, "status": "abandoned", "error": error})
            }
        })
        .collect();
    db.execute(
        "UPDATE meet_recording_delivery AS d SET \
           status = json_extract(j.value, '$.status'), \
           next_attempt_at = coalesce(json_extract(j.value, '$.next'), d.next_attempt_at), \
           last_error = json_extract(j.value, '$.error'), \
           delivered_at = CASE json_extract(j.value, '$.status') WHEN 'delivered' THEN ?2 END, \
           claim = NULL, claimed_until = NULL \
         FROM json_each(?1) AS j \
         WHERE d.id = json_extract(j.value, '$.id') AND d.claim = ?3 AND d.status = 'pending'",
        &[
            Value::Array(items).to_string().into(),
            now_text.into(),
            claim.into(),
        ],
    )?;
    Ok(())
}

/// Saves the recording of egress `worker_id` (`active|stopped` → `saved`,
/// deliveries owed by the trigger); its id when it moved.
pub fn save_by_worker(
    db: &dyn Database,
    worker_id: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, DbError> {
    let result = db.execute(
        "UPDATE meet_recording SET status = 'saved', updated_at = ?1 \
         WHERE worker_id = ?2 AND status IN ('active', 'stopped') RETURNING id",
        &[timestamp(now).into(), worker_id.into()],
    )?;
    let id = rows(&result).next().map(|row| row.text("id")).transpose();
    id
}

/// The tables with an `expires_at` column (sessions, bearer tokens, the
/// cache, and whatever later migrations add).
pub fn expiring_tables(db: &dyn Database) -> Result<Vec<String>, DbError> {
    let result = db.execute(
        "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND p.name = 'expires_at' ORDER BY m.name",
        &[],
    )?;
    rows(&result).map(|row| row.text("name")).collect()
}

/// Deletes at most `limit` rows of `table` whose `expires_at` is past:
/// timestamp text, or milliseconds since the epoch for integer columns
/// (the lobby's tables). `table` comes from [`expiring_tables`], never
/// from a request.
pub fn purge_expired(
    db: &dyn Database,
    table: &str,
    now: OffsetDateTime,
    limit: u64,
) -> Result<u64, DbError> {
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let result = db.execute(
        &format!(
            "DELETE FROM {quoted} WHERE rowid IN \
             (SELECT rowid FROM {quoted} WHERE expires_at < \
                CASE typeof(expires_at) WHEN 'text' THEN ?1 ELSE ?3 END LIMIT ?2) RETURNING 1"
        ),
        &[
            timestamp(now).into(),
            int(limit),
            i64::try_from(now.unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(i64::MAX)
                .into(),
        ],
    )?;
    Ok(result.rows.len() as u64)
}

/// Deletes at most `limit` finished deliveries older than `before`.
pub fn purge_finished_deliveries(
    db: &dyn Database,
    before: OffsetDateTime,
    limit: u64,
) -> Result<u64, DbError> {
    let result = db.execute(
        "DELETE FROM meet_recording_delivery WHERE id IN \
         (SELECT id FROM meet_recording_delivery \
          WHERE status IN ('delivered', 'abandoned') AND created_at < ?1 LIMIT ?2) RETURNING 1",
        &[timestamp(before).into(), int(limit)],
    )?;
    Ok(result.rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::migrated_database;
    use time::macros::datetime;

    const ROOM: &str = "00000000-0000-4000-8000-000000000100";
    const NOW: OffsetDateTime = datetime!(2026-01-01 10:00 UTC);

    fn user(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn world() -> crate::native::SqliteDatabase {
        let db = migrated_database().unwrap();
        for n in 1..=2 {
            db.execute(
                "INSERT INTO meet_user (id, created_at, updated_at, sub, email, language) \
                 VALUES (?1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', ?2, ?3, 'fr-fr')",
                &[user(n).into(), format!("sub-{n}").into(), format!("u{n}@example.org").into()],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug) \
             VALUES (?1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'Room', 'room')",
            &[ROOM.into()],
        )
        .unwrap();
        db
    }

    #[test]
    fn one_recording_in_progress_per_room_and_its_owner_created_with_it() {
        let db = world();
        let rec = |n: u32| format!("00000000-0000-4000-9000-{n:012}");
        create(
            &db,
            &rec(1),
            ROOM,
            Mode::Transcript,
            &user(1),
            &rec(101),
            NOW,
        )
        .unwrap();
        assert_eq!(
            create(
                &db,
                &rec(2),
                ROOM,
                Mode::Transcript,
                &user(1),
                &rec(102),
                NOW
            ),
            Err(CreateError::InProgress)
        );
        let found = find_for_user(&db, &rec(1), &user(1)).unwrap().unwrap();
        assert_eq!(
            (found.status, found.role),
            (Status::Initiated, Some(Role::Owner))
        );
        assert!(find_for_user(&db, &rec(2), &user(1)).unwrap().is_none());
        assert!(mark_started(&db, &rec(1), "EG_1", NOW).unwrap());
        assert!(
            !mark_started(&db, &rec(1), "EG_1", NOW).unwrap(),
            "only from initiated"
        );
        // Late events do not move it backwards.
        let stopped =
            transition_by_worker(&db, "EG_1", &[Status::Active], Status::Stopped, NOW).unwrap();
        assert_eq!(stopped.map(|m| m.status), Some(Status::Stopped));
        assert!(
            transition_by_worker(&db, "EG_1", &[Status::Active], Status::Stopped, NOW)
                .unwrap()
                .is_none()
        );
        assert!(
            transition_by_worker(&db, "EG_1", &[Status::Initiated], Status::Active, NOW)
                .unwrap()
                .is_none()
        );
        // The room is free again.
        create(
            &db,
            &rec(2),
            ROOM,
            Mode::ScreenRecording,
            &user(1),
            &rec(102),
            NOW,
        )
        .unwrap();
    }

    #[test]
    fn saving_owes_deliveries_and_the_last_success_completes_the_recording() {
        let db = world();
        let id = "00000000-0000-4000-9000-000000000001";
        create(
            &db,
            id,
            ROOM,
            Mode::ScreenRecording,
            &user(1),
            "00000000-0000-4000-9000-000000000101",
            NOW,
        )
        .unwrap();
        db.execute(
            "INSERT INTO meet_recording_access (id, created_at, updated_at, recording_id, user_id, role) \
             VALUES ('00000000-0000-4000-9000-000000000102', ?1, ?1, ?2, ?3, 'owner')",
            &[timestamp(NOW).into(), id.into(), user(2).into()],
        )
        .unwrap();
        assert!(mark_started(&db, id, "EG_1", NOW).unwrap());
        assert_eq!(save(&db, id, NOW).unwrap(), SaveOutcome::Saved);
        assert_eq!(save(&db, id, NOW).unwrap(), SaveOutcome::NotSavable);
        assert_eq!(
            save(&db, "00000000-0000-4000-9000-000000000009", NOW).unwrap(),
            SaveOutcome::NotFound
        );

        let claimed = claim_deliveries(
            &db,
            Some(id),
            "a",
            NOW,
            NOW + time::Duration::minutes(10),
            10,
        )
        .unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].payload["email"], "u1@example.org");
        assert_eq!(claimed[1].payload["language"], "fr-fr");
        // Held: nobody else gets them.
        assert!(claim_deliveries(&db, None, "b", NOW, NOW, 10)
            .unwrap()
            .is_empty());
        let retry_at = NOW + time::Duration::minutes(1);
        finish_deliveries(
            &db,
            "a",
            &[
                (claimed[0].id, AttemptResult::Delivered),
                (
                    claimed[1].id,
                    AttemptResult::Retry {
                        at: retry_at,
                        error: "450".into(),
                    },
                ),
            ],
            NOW,
        )
        .unwrap();
        let status = |db: &crate::native::SqliteDatabase| {
            find_for_user(db, id, &user(1)).unwrap().unwrap().status
        };
        assert_eq!(status(&db), Status::Saved);
        // A stale claimer cannot finish what it no longer holds.
        finish_deliveries(&db, "a", &[(claimed[1].id, AttemptResult::Delivered)], NOW).unwrap();
        assert_eq!(status(&db), Status::Saved);
        assert!(
            claim_deliveries(&db, None, "c", NOW, NOW, 10)
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        let again = claim_deliveries(
            &db,
            None,
            "c",
            retry_at,
            retry_at + time::Duration::minutes(10),
            10,
        )
        .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        finish_deliveries(
            &db,
            "c",
            &[(again[0].id, AttemptResult::Delivered)],
            retry_at,
        )
        .unwrap();
        assert_eq!(status(&db), Status::NotificationSucceeded);
        assert!(claim_deliveries(
            &db,
            None,
            "d",
            retry_at + time::Duration::days(1),
            retry_at,
            10
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn expired_rows_are_purged_in_bounded_batches() {
        let db = world();
        let tables = expiring_tables(&db).unwrap();
        for table in ["meet_bearer_token", "meet_cache", "meet_session"] {
            assert!(tables.iter().any(|t| t == table), "{tables:?}");
        }
        for n in 0..5 {
            db.execute(
                "INSERT INTO meet_cache (key, value, expires_at) VALUES (?1, 1, ?2)",
                &[
                    format!("k{n}").into(),
                    timestamp(NOW - time::Duration::hours(1)).into(),
                ],
            )
            .unwrap();
        }
        assert_eq!(purge_expired(&db, "meet_cache", NOW, 3).unwrap(), 3);
        assert_eq!(purge_expired(&db, "meet_cache", NOW, 3).unwrap(), 2);
        assert_eq!(purge_expired(&db, "meet_cache", NOW, 3).unwrap(), 0);
        // Integer expiries are milliseconds.
        db.execute_batch("CREATE TABLE t_ms (k TEXT, expires_at INTEGER)")
            .unwrap();
        let ms = i64::try_from(NOW.unix_timestamp_nanos() / 1_000_000).unwrap();
        db.execute(
            "INSERT INTO t_ms VALUES ('old', ?1), ('new', ?2)",
            &[(ms - 1).into(), (ms + 60_000).into()],
        )
        .unwrap();
        assert_eq!(purge_expired(&db, "t_ms", NOW, 10).unwrap(), 1);
    }
}
