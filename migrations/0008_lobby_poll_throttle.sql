-- A waiting guest's poll is one statement (issue 14): the throttle of
-- anonymous polls that carry a lobby cookie counts in the entry itself
-- (`polls` in the fixed window ending at `polls_window_ends`, Unix
-- milliseconds) instead of a separate `meet_cache` counter, so the upsert
-- that refreshes the entry also counts, and refuses to write past the rate.
ALTER TABLE meet_lobby_entry ADD COLUMN polls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meet_lobby_entry ADD COLUMN polls_window_ends INTEGER NOT NULL DEFAULT 0;
