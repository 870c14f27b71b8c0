-- Telephony PINs unique by construction, per trunk (issue 11).
--
-- A new room's PIN is `permutation(counter)` (crates/meet-pin) where the
-- counter is taken atomically from `meet_pin_counter` for the room's trunk
-- and the PIN length. `meet_room.pin_code` was globally UNIQUE; SQLite cannot
-- drop that constraint without rebuilding the table (and the tables and
-- triggers that point at it), so the PIN moves to two new columns with a
-- UNIQUE (trunk, pin) index, and `pin_code` is retired (always NULL).
-- `''` is the trunk of a deployment without trunk namespaces (and of every
-- PIN given before this migration).

ALTER TABLE meet_room ADD COLUMN telephony_trunk TEXT NOT NULL DEFAULT '';
ALTER TABLE meet_room ADD COLUMN telephony_pin TEXT;
UPDATE meet_room SET telephony_pin = pin_code, pin_code = NULL WHERE pin_code IS NOT NULL;
-- Still a guard: a PIN given before the counters existed (random draws)
-- may equal a counter's PIN; the allocator then takes the next counter.
CREATE UNIQUE INDEX meet_room_telephony_pin ON meet_room (telephony_trunk, telephony_pin)
    WHERE telephony_pin IS NOT NULL;

-- One counter per (trunk, length): `next` is the counter the next room of
-- that trunk takes.
CREATE TABLE meet_pin_counter (
    namespace TEXT NOT NULL,
    length    INTEGER NOT NULL CHECK (length >= 4),
    next      INTEGER NOT NULL CHECK (next >= 0),
    PRIMARY KEY (namespace, length)
);

-- Room creation now writes the trunk and the PIN.
DROP TRIGGER meet_room_creation_insert;
DROP VIEW meet_room_creation;
CREATE VIEW meet_room_creation AS
SELECT r.id, r.created_at, r.name, r.slug, r.access_level, r.configuration,
       r.telephony_trunk, r.telephony_pin,
       a.id AS owner_access_id, a.user_id AS owner_id
FROM meet_room r JOIN meet_resource_access a ON a.resource_id = r.id AND a.role = 'owner';

CREATE TRIGGER meet_room_creation_insert INSTEAD OF INSERT ON meet_room_creation
BEGIN
    INSERT INTO meet_room (id, created_at, updated_at, name, slug, access_level, configuration,
                           telephony_trunk, telephony_pin)
    VALUES (NEW.id, NEW.created_at, NEW.created_at, NEW.name, NEW.slug, NEW.access_level,
            NEW.configuration, coalesce(NEW.telephony_trunk, ''), NEW.telephony_pin);
    INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role)
    VALUES (NEW.owner_access_id, NEW.created_at, NEW.created_at, NEW.id, NEW.owner_id, 'owner');
END;
