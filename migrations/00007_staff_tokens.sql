-- +goose Up
-- Personal access tokens of staff (issue 12): the staff JSON API's credential, with
-- which the `issuer` CLI acts as its owner, with its owner's role. Shown once, kept as
-- a SHA-256; a name, an expiry (always), a last-used time; revoking stops it at once.
CREATE TABLE staff_tokens (
    id           text PRIMARY KEY CHECK (id ~ '^stk_[0-9A-HJKMNP-TV-Z]{26}$'),
    staff_id     bigint NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX staff_tokens_staff_idx ON staff_tokens (staff_id, created_at DESC);

-- +goose Down
DROP TABLE staff_tokens;
