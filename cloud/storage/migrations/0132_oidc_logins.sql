-- OpenID Connect sign-in (issue 17.1): a sign-in started at the identity provider waits here
-- for its callback (state, nonce and PKCE verifier), at most a few minutes, and is used once.
-- Only the sha256 of the state is kept, like session ids.
CREATE TABLE oidc_logins (
    state_hash  bytea PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    nonce       text NOT NULL,
    verifier    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
