-- Dashboard sessions and expiring API tokens (issue 12).
-- The browser's cookie carries a random session id; only its sha256 is kept here, so a copy of
-- the database gives no live session. A session belongs to the API token it was opened with:
-- revoking or expiring that token, or disabling the user, ends the session too.

CREATE TABLE ui_sessions (
    session_hash  bytea PRIMARY KEY,          -- sha256 of the cookie value
    token_id      bigint NOT NULL REFERENCES api_tokens,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,       -- absolute end, whatever the activity
    revoked_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX ui_sessions_token ON ui_sessions (token_id) WHERE revoked_at IS NULL;

ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
