-- Login state: server-side sessions, the provider's key set, and the
-- short-lived cache of users resolved from bearer tokens.

CREATE TABLE meet_session (
    -- hex SHA-256 of the `sessionid` cookie: the cookie itself is never stored
    key_hash   TEXT PRIMARY KEY NOT NULL CHECK (length(key_hash) = 64),
    user_id    TEXT REFERENCES meet_user (id) ON DELETE CASCADE,
    data       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    csrf_token TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX meet_session_expiry ON meet_session (expires_at);
CREATE INDEX meet_session_user ON meet_session (user_id);

-- The OIDC provider's JWKS, fetched again on an unknown key id.
CREATE TABLE meet_oidc_key_set (
    jwks_url   TEXT PRIMARY KEY NOT NULL,
    jwks       TEXT NOT NULL CHECK (json_valid(jwks)),
    fetched_at TEXT NOT NULL
);

-- Users resolved from bearer access tokens, keyed by the token's hash.
CREATE TABLE meet_bearer_token (
    token_hash TEXT PRIMARY KEY NOT NULL CHECK (length(token_hash) = 64),
    user_id    TEXT NOT NULL REFERENCES meet_user (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
CREATE INDEX meet_bearer_token_expiry ON meet_bearer_token (expires_at);

CREATE TRIGGER meet_user_login_cascade AFTER DELETE ON meet_user
BEGIN
    DELETE FROM meet_session WHERE user_id = OLD.id;
    DELETE FROM meet_bearer_token WHERE user_id = OLD.id;
END;
