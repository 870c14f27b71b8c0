-- The domain of La Suite Meet (users, rooms, accesses, recordings) with its
-- invariants as constraints.
--
-- Conventions:
-- * ids are lowercase dashed UUID v4 strings;
-- * timestamps are UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (sortable as text);
-- * booleans are 0/1 integers;
-- * cascades are triggers as well as foreign keys: SQLite only enforces
--   foreign keys on connections that ask for it, and a Spin component cannot
--   afford an extra PRAGMA round trip on every request.

CREATE TABLE meet_user (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sub         TEXT UNIQUE CHECK (sub IS NULL OR length(sub) BETWEEN 1 AND 255),
    email       TEXT,
    admin_email TEXT UNIQUE,
    full_name   TEXT CHECK (full_name IS NULL OR length(full_name) <= 100),
    short_name  TEXT CHECK (short_name IS NULL OR length(short_name) <= 100),
    language    TEXT NOT NULL DEFAULT 'en-us'
                CHECK (language IN ('en-us', 'fr-fr', 'nl-nl', 'de-de')),
    timezone    TEXT NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 100),
    is_device   INTEGER NOT NULL DEFAULT 0 CHECK (is_device IN (0, 1)),
    is_staff    INTEGER NOT NULL DEFAULT 0 CHECK (is_staff IN (0, 1)),
    is_active   INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1))
);
-- Login may fall back to a case-insensitive email match.
CREATE INDEX meet_user_email_ci ON meet_user (lower(email));

-- Upstream's Resource and Room (multi-table inheritance, same id) are one
-- table: a room is the only kind of resource.
CREATE TABLE meet_room (
    id            TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    name          TEXT NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 500),
    slug          TEXT UNIQUE CHECK (slug IS NULL OR length(slug) BETWEEN 1 AND 100),
    access_level  TEXT NOT NULL DEFAULT 'public'
                  CHECK (access_level IN ('public', 'trusted', 'restricted')),
    configuration TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(configuration)),
    pin_code      TEXT UNIQUE
);
CREATE INDEX meet_room_name ON meet_room (name);

CREATE TABLE meet_resource_access (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES meet_room (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES meet_user (id) ON DELETE CASCADE,
    role        TEXT NOT NULL DEFAULT 'member'
                CHECK (role IN ('member', 'administrator', 'owner')),
    UNIQUE (user_id, resource_id)
);
CREATE INDEX meet_resource_access_resource ON meet_resource_access (resource_id, role);

CREATE TABLE meet_recording (
    id         TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    room_id    TEXT NOT NULL REFERENCES meet_room (id) ON DELETE CASCADE,
    status     TEXT NOT NULL DEFAULT 'initiated'
               CHECK (status IN ('initiated', 'active', 'stopped', 'saved', 'aborted',
                                 'failed_to_start', 'failed_to_stop', 'notification_succeeded')),
    worker_id  TEXT CHECK (worker_id IS NULL OR length(worker_id) <= 255),
    mode       TEXT NOT NULL DEFAULT 'screen_recording'
               CHECK (mode IN ('screen_recording', 'transcript'))
);
-- At most one recording in progress per room.
CREATE UNIQUE INDEX unique_initiated_or_active_recording_per_room
    ON meet_recording (room_id) WHERE status IN ('initiated', 'active');
CREATE INDEX meet_recording_room ON meet_recording (room_id, status);

CREATE TABLE meet_recording_access (
    id           TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    recording_id TEXT NOT NULL REFERENCES meet_recording (id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES meet_user (id) ON DELETE CASCADE,
    team         TEXT NOT NULL DEFAULT '' CHECK (length(team) <= 100),
    role         TEXT NOT NULL DEFAULT 'member'
                 CHECK (role IN ('member', 'administrator', 'owner')),
    CONSTRAINT either_user_or_team
        CHECK ((user_id IS NOT NULL AND team = '') OR (user_id IS NULL AND team <> ''))
);
CREATE UNIQUE INDEX recording_access_unique_user
    ON meet_recording_access (user_id, recording_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX recording_access_unique_team
    ON meet_recording_access (team, recording_id) WHERE team <> '';
CREATE INDEX meet_recording_access_recording ON meet_recording_access (recording_id, role);

-- Cascades that hold whether or not the connection enforces foreign keys.
CREATE TRIGGER meet_room_cascade AFTER DELETE ON meet_room
BEGIN
    DELETE FROM meet_resource_access WHERE resource_id = OLD.id;
    DELETE FROM meet_recording WHERE room_id = OLD.id;
END;

CREATE TRIGGER meet_recording_cascade AFTER DELETE ON meet_recording
BEGIN
    DELETE FROM meet_recording_access WHERE recording_id = OLD.id;
END;

CREATE TRIGGER meet_user_cascade AFTER DELETE ON meet_user
BEGIN
    DELETE FROM meet_resource_access WHERE user_id = OLD.id;
    DELETE FROM meet_recording_access WHERE user_id = OLD.id;
END;

-- Last-owner protection: a room that exists keeps at least one owner. The
-- room or the user being deleted (cascades) is not a demotion.
CREATE TRIGGER meet_resource_access_keep_owner_on_update
BEFORE UPDATE OF role, resource_id ON meet_resource_access
WHEN OLD.role = 'owner'
     AND (NEW.role <> 'owner' OR NEW.resource_id <> OLD.resource_id)
     AND (SELECT count(*) FROM meet_resource_access
          WHERE resource_id = OLD.resource_id AND role = 'owner') = 1
BEGIN
    SELECT RAISE(ABORT, 'last_owner: A resource should keep at least one owner.');
END;

CREATE TRIGGER meet_resource_access_keep_owner_on_delete
BEFORE DELETE ON meet_resource_access
WHEN OLD.role = 'owner'
     AND EXISTS (SELECT 1 FROM meet_room WHERE id = OLD.resource_id)
     AND EXISTS (SELECT 1 FROM meet_user WHERE id = OLD.user_id)
     AND (SELECT count(*) FROM meet_resource_access
          WHERE resource_id = OLD.resource_id AND role = 'owner') = 1
BEGIN
    SELECT RAISE(ABORT, 'last_owner: A resource should keep at least one owner.');
END;
