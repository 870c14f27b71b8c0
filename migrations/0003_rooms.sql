-- Room creation in one atomic statement, and a small expiring key-value
-- store standing in for upstream's Redis cache.

-- Inserting into this view creates the room and its owner's access
-- together: one statement, so no interactive transaction is needed (each
-- statement is a round trip on libSQL, and a half-created room without an
-- owner must never exist).
CREATE VIEW meet_room_creation AS
SELECT r.id, r.created_at, r.name, r.slug, r.access_level, r.configuration, r.pin_code,
       a.id AS owner_access_id, a.user_id AS owner_id
FROM meet_room r JOIN meet_resource_access a ON a.resource_id = r.id AND a.role = 'owner';

CREATE TRIGGER meet_room_creation_insert INSTEAD OF INSERT ON meet_room_creation
BEGIN
    INSERT INTO meet_room (id, created_at, updated_at, name, slug, access_level, configuration, pin_code)
    VALUES (NEW.id, NEW.created_at, NEW.created_at, NEW.name, NEW.slug, NEW.access_level,
            NEW.configuration, NEW.pin_code);
    INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role)
    VALUES (NEW.owner_access_id, NEW.created_at, NEW.created_at, NEW.id, NEW.owner_id, 'owner');
END;

-- Values with a time to live: room-creation callbacks, throttle counters
-- (and the lobby later). `value` has no declared type so that counters stay
-- integers.
CREATE TABLE meet_cache (
    key        TEXT PRIMARY KEY NOT NULL,
    value      NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX meet_cache_expiry ON meet_cache (expires_at);
