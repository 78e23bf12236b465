-- +goose Up
-- The customer portal and the customer download API (customer-api.md, issue 13).
-- Every query of the portal and the customer API is scoped by customer_id in the
-- storage call itself; the columns below are what makes that possible.

-- A portal user belongs to one customer. Sign-in is by emailed one-time link only:
-- there is no password to leak.
CREATE TABLE portal_users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     text NOT NULL REFERENCES customers (id),
    email           text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    name            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    disabled_at     timestamptz,
    last_sign_in_at timestamptz
);
CREATE INDEX portal_users_customer_idx ON portal_users (customer_id);

-- One-time sign-in links: the SHA-256 of a 32-byte random token; single use, short
-- lived. Only ever made for a known, enabled portal user.
CREATE TABLE portal_sign_in_links (
    token_hash     bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    portal_user_id bigint NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX portal_sign_in_links_expires_idx ON portal_sign_in_links (expires_at);

-- Server-side sessions of portal users: the cookie holds a random token whose SHA-256
-- is the key. Idle and absolute lifetimes; expired rows are swept.
CREATE TABLE portal_sessions (
    token_hash     bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    portal_user_id bigint NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    customer_id    text NOT NULL REFERENCES customers (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX portal_sessions_expires_idx ON portal_sessions (expires_at);

-- Customer API tokens (customer-api.md): read-only, one customer, shown once, kept as
-- a SHA-256. Revoking sets revoked_at: the token stops at once.
CREATE TABLE customer_tokens (
    id           text PRIMARY KEY CHECK (id ~ '^ctk_[0-9A-HJKMNP-TV-Z]{26}$'),
    customer_id  text NOT NULL REFERENCES customers (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX customer_tokens_customer_idx ON customer_tokens (customer_id, created_at DESC);

-- Every file delivered to a customer (portal or API): the evidence of delivery.
CREATE TABLE downloads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    customer_id text NOT NULL REFERENCES customers (id),
    license_id  text REFERENCES licenses (id),
    product     text NOT NULL DEFAULT '',
    what        text NOT NULL CHECK (what IN ('file', 'summary', 'checklist', 'bundle')),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('portal_user', 'customer_token', 'staff')),
    actor       text NOT NULL,
    client_addr text NOT NULL DEFAULT ''
);
CREATE INDEX downloads_license_idx ON downloads (license_id, id DESC);
CREATE INDEX downloads_customer_idx ON downloads (customer_id, id DESC);

-- +goose Down
DROP TABLE downloads;
DROP TABLE customer_tokens;
DROP TABLE portal_sessions;
DROP TABLE portal_sign_in_links;
DROP TABLE portal_users;
