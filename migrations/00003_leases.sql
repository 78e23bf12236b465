-- +goose Up
-- A lease-required license's bearer token, as a SHA-256 hash only (the token is 32
-- random bytes, shown once). One per license; rotating replaces it.
CREATE TABLE lease_tokens (
    license_id text PRIMARY KEY REFERENCES licenses (id),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);

-- +goose Down
DROP TABLE lease_tokens;
