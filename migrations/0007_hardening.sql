-- Machine-readable refusals: every RAISE of our triggers starts with
-- `meet_refused:<reason>:` so that the core classifies it the same way on
-- every backend (Spin's sqlite interface carries only the message text).
-- New triggers follow the same convention.

DROP TRIGGER meet_resource_access_keep_owner_on_update;
CREATE TRIGGER meet_resource_access_keep_owner_on_update
BEFORE UPDATE OF role, resource_id ON meet_resource_access
WHEN OLD.role = 'owner'
     AND (NEW.role <> 'owner' OR NEW.resource_id <> OLD.resource_id)
     AND (SELECT count(*) FROM meet_resource_access
          WHERE resource_id = OLD.resource_id AND role = 'owner') = 1
BEGIN
    SELECT RAISE(ABORT, 'meet_refused:last_owner: A resource should keep at least one owner.');
END;

DROP TRIGGER meet_resource_access_keep_owner_on_delete;
CREATE TRIGGER meet_resource_access_keep_owner_on_delete
BEFORE DELETE ON meet_resource_access
WHEN OLD.role = 'owner'
     AND EXISTS (SELECT 1 FROM meet_room WHERE id = OLD.resource_id)
     AND EXISTS (SELECT 1 FROM meet_user WHERE id = OLD.user_id)
     AND (SELECT count(*) FROM meet_resource_access
          WHERE resource_id = OLD.resource_id AND role = 'owner') = 1
BEGIN
    SELECT RAISE(ABORT, 'meet_refused:last_owner: A resource should keep at least one owner.');
END;

-- Expired rows are purged by the writes that happen anyway, a bounded
-- number (20) at a time, with the writer's clock (never the database's):
-- no extra statement on any request. `meet-core`'s
-- `cache::purge_expired_rows` purges in bulk for the maintenance endpoint.

-- A new session (login, or the start of one) purges expired sessions.
CREATE TRIGGER meet_session_purge_expired AFTER INSERT ON meet_session
BEGIN
    DELETE FROM meet_session WHERE rowid IN
        (SELECT rowid FROM meet_session WHERE expires_at <= NEW.created_at LIMIT 20);
END;

-- Bearer tokens: `cached_at` is when the user was resolved (the writer's now).
ALTER TABLE meet_bearer_token ADD COLUMN cached_at TEXT;
CREATE TRIGGER meet_bearer_token_purge_expired_on_insert AFTER INSERT ON meet_bearer_token
WHEN NEW.cached_at IS NOT NULL
BEGIN
    DELETE FROM meet_bearer_token WHERE rowid IN
        (SELECT rowid FROM meet_bearer_token WHERE expires_at <= NEW.cached_at LIMIT 20);
END;
CREATE TRIGGER meet_bearer_token_purge_expired_on_update AFTER UPDATE OF cached_at ON meet_bearer_token
WHEN NEW.cached_at IS NOT NULL
BEGIN
    DELETE FROM meet_bearer_token WHERE rowid IN
        (SELECT rowid FROM meet_bearer_token WHERE expires_at <= NEW.cached_at LIMIT 20);
END;

-- The cache (throttle counters, room-creation callbacks, lobby entries):
-- `written_at` is the writer's now; writers that leave it NULL purge nothing.
ALTER TABLE meet_cache ADD COLUMN written_at TEXT;
CREATE TRIGGER meet_cache_purge_expired_on_insert AFTER INSERT ON meet_cache
WHEN NEW.written_at IS NOT NULL
BEGIN
    DELETE FROM meet_cache WHERE rowid IN
        (SELECT rowid FROM meet_cache WHERE expires_at <= NEW.written_at LIMIT 20);
END;
CREATE TRIGGER meet_cache_purge_expired_on_update AFTER UPDATE OF written_at ON meet_cache
WHEN NEW.written_at IS NOT NULL
BEGIN
    DELETE FROM meet_cache WHERE rowid IN
        (SELECT rowid FROM meet_cache WHERE expires_at <= NEW.written_at LIMIT 20);
END;
