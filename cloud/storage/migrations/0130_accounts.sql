-- Accounts for people (issue 17.1): a password (argon2id hash, never the password), an optional
-- TOTP second factor, lock-out after repeated failures, and a printed name for e-signatures.
-- API tokens stay for machines and scripts; a user without a password cannot sign in to the
-- dashboard with one nor sign a record (cloud/accounts).

ALTER TABLE users
    ADD COLUMN full_name           text CHECK (full_name ~ '^[^\x01-\x1f\x7f]{1,200}$'),
    ADD COLUMN password_hash       text,
    ADD COLUMN password_changed_at timestamptz,
    ADD COLUMN totp_secret         text,     -- base32; set once enrolment is confirmed
    ADD COLUMN totp_pending        text,     -- base32; an enrolment not yet confirmed
    ADD COLUMN totp_last_step      bigint,   -- the last 30 s step accepted: a code is used once
    ADD COLUMN failed_attempts     integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    ADD COLUMN locked_until        timestamptz;

-- A dashboard session is opened either with an API token (as before) or with a password.
ALTER TABLE ui_sessions
    ADD COLUMN user_id bigint REFERENCES users,
    ALTER COLUMN token_id DROP NOT NULL,
    ADD CONSTRAINT ui_sessions_one_owner CHECK ((token_id IS NULL) <> (user_id IS NULL));
CREATE INDEX ui_sessions_user ON ui_sessions (user_id) WHERE revoked_at IS NULL;

CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_at ON audit_log (at);
