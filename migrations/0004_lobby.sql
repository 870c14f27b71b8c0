-- The lobby (lobby.md): one row per (room, participant) instead of upstream's
-- cache keys `<prefix>_<room>_<participant>`. A row whose `expires_at` (Unix
-- milliseconds) has passed is absent for every read; expired rows are purged
-- a few at a time when a new entry is inserted (trigger below, on the
-- database's clock), so no job is needed. `created_by` is a random token of the request that created the
-- current entry: an upsert's RETURNING tells a new entry from a refreshed one.
CREATE TABLE meet_lobby_entry (
    room_id        TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('waiting', 'accepted', 'denied')),
    username       TEXT NOT NULL,
    color          TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    PRIMARY KEY (room_id, participant_id)
) WITHOUT ROWID;
CREATE INDEX meet_lobby_entry_expiry ON meet_lobby_entry (expires_at);

-- At most 16 expired rows go with each new entry: bounded work per request.
CREATE TRIGGER meet_lobby_entry_purge AFTER INSERT ON meet_lobby_entry
BEGIN
    DELETE FROM meet_lobby_entry WHERE (room_id, participant_id) IN (
        SELECT room_id, participant_id FROM meet_lobby_entry
        WHERE expires_at < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        LIMIT 16);
END;

-- LiveKit webhook deliveries already processed (by event id), so that a
-- duplicate delivery has the effect of one. Kept for a day; purged like the
-- lobby.
CREATE TABLE meet_webhook_event (
    id         TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX meet_webhook_event_expiry ON meet_webhook_event (expires_at);

CREATE TRIGGER meet_webhook_event_purge AFTER INSERT ON meet_webhook_event
BEGIN
    DELETE FROM meet_webhook_event WHERE id IN (
        SELECT id FROM meet_webhook_event
        WHERE expires_at < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        LIMIT 16);
END;
