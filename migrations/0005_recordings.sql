-- Recordings (issue 10): creation in one statement, and the owner
-- notifications as an outbox the database fills when a recording is saved.

-- Inserting into this view creates the recording (`initiated`) and its
-- starter's `owner` access together. The partial unique index
-- `unique_initiated_or_active_recording_per_room` (0001) refuses the whole
-- statement when the room already has a recording in progress.
CREATE VIEW meet_recording_creation AS
SELECT r.id, r.created_at, r.room_id, r.mode,
       a.id AS owner_access_id, a.user_id AS owner_id
FROM meet_recording r
JOIN meet_recording_access a ON a.recording_id = r.id AND a.role = 'owner';

CREATE TRIGGER meet_recording_creation_insert INSTEAD OF INSERT ON meet_recording_creation
BEGIN
    INSERT INTO meet_recording (id, created_at, updated_at, room_id, status, mode)
    VALUES (NEW.id, NEW.created_at, NEW.created_at, NEW.room_id, 'initiated', NEW.mode);
    INSERT INTO meet_recording_access (id, created_at, updated_at, recording_id, user_id, team, role)
    VALUES (NEW.owner_access_id, NEW.created_at, NEW.created_at, NEW.id, NEW.owner_id, '', 'owner');
END;

CREATE INDEX meet_recording_worker ON meet_recording (worker_id) WHERE worker_id IS NOT NULL;

-- One row per notification owed to an owner of a saved recording:
-- `email` (screen recordings, one per owner) or `summary` (transcripts, the
-- newest owner). `payload` holds what the message needs, frozen when the
-- recording was saved. A delivery is claimed (`claim`, until
-- `claimed_until`) before it is attempted, so two workers never send it
-- together, and it is never attempted again once `delivered`.
CREATE TABLE meet_recording_delivery (
    id              INTEGER PRIMARY KEY,
    recording_id    TEXT NOT NULL REFERENCES meet_recording (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('email', 'summary')),
    user_id         TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'abandoned')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claim           TEXT,
    claimed_until   TEXT,
    delivered_at    TEXT,
    last_error      TEXT,
    UNIQUE (recording_id, kind, user_id)
);
CREATE INDEX meet_recording_delivery_due ON meet_recording_delivery (next_attempt_at)
    WHERE status = 'pending';

-- Saving a recording (active|stopped → saved) owes its notifications, in
-- the same statement: they cannot be lost between two round trips.
CREATE TRIGGER meet_recording_saved AFTER UPDATE OF status ON meet_recording
WHEN NEW.status = 'saved' AND OLD.status IN ('active', 'stopped')
BEGIN
    INSERT OR IGNORE INTO meet_recording_delivery
        (recording_id, kind, user_id, payload, created_at, next_attempt_at)
    SELECT NEW.id, 'email', u.id,
           json_object('email', u.email, 'language', u.language, 'timezone', u.timezone,
                       'sub', u.sub, 'created_at', NEW.created_at, 'mode', NEW.mode,
                       'room_name', (SELECT name FROM meet_room WHERE id = NEW.room_id)),
           NEW.updated_at, NEW.updated_at
    FROM meet_recording_access a JOIN meet_user u ON u.id = a.user_id
    WHERE NEW.mode = 'screen_recording' AND a.recording_id = NEW.id AND a.role = 'owner'
    ORDER BY a.created_at, a.id;

    INSERT OR IGNORE INTO meet_recording_delivery
        (recording_id, kind, user_id, payload, created_at, next_attempt_at)
    SELECT NEW.id, 'summary', u.id,
           json_object('email', u.email, 'language', u.language, 'timezone', u.timezone,
                       'sub', u.sub, 'created_at', NEW.created_at, 'mode', NEW.mode,
                       'room_name', (SELECT name FROM meet_room WHERE id = NEW.room_id)),
           NEW.updated_at, NEW.updated_at
    FROM meet_recording_access a JOIN meet_user u ON u.id = a.user_id
    WHERE NEW.mode = 'transcript' AND a.recording_id = NEW.id AND a.role = 'owner'
    ORDER BY a.created_at DESC, a.id DESC
    LIMIT 1;
END;

-- The last delivery of a saved recording to succeed completes it.
CREATE TRIGGER meet_recording_delivery_completed AFTER UPDATE OF status ON meet_recording_delivery
WHEN NEW.status = 'delivered'
     AND NOT EXISTS (SELECT 1 FROM meet_recording_delivery
                     WHERE recording_id = NEW.recording_id AND status <> 'delivered')
BEGIN
    UPDATE meet_recording SET status = 'notification_succeeded', updated_at = NEW.delivered_at
    WHERE id = NEW.recording_id AND status = 'saved';
END;

CREATE TRIGGER meet_recording_delivery_cascade AFTER DELETE ON meet_recording
BEGIN
    DELETE FROM meet_recording_delivery WHERE recording_id = OLD.id;
END;
