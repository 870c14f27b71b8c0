//! All SQL of the webhook endpoint: processed event ids
//! (`meet_webhook_event`, migrations/0004_lobby.sql).

use time::OffsetDateTime;

use crate::lobby::store::millis;
use crate::ports::{Database, DbError};

/// How long a processed event id is remembered (LiveKit retries for minutes).
pub const EVENT_ID_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Records `id` as processed; `false` when it already was (a duplicate).
pub fn first_delivery(db: &dyn Database, id: &str, now: OffsetDateTime) -> Result<bool, DbError> {
    let result = db.execute(
        "INSERT INTO meet_webhook_event (id, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
           WHERE meet_webhook_event.expires_at <= ?3 \
         RETURNING 1 AS recorded",
        &[
            id.into(),
            millis(now).saturating_add(EVENT_ID_TTL_MS).into(),
            millis(now).into(),
        ],
    )?;
    Ok(!result.rows.is_empty())
}

/// Forgets `id` after a failed delivery, so that LiveKit's retry is processed.
pub fn forget(db: &dyn Database, id: &str) -> Result<(), DbError> {
    db.execute("DELETE FROM meet_webhook_event WHERE id = ?1", &[id.into()])?;
    Ok(())
}
