-- +goose Up
CREATE TABLE products (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]*$'),
    name       text NOT NULL,
    -- envelope: metrum.license.v1 signed envelope; jws: CoreSDK compact JWS
    form       text NOT NULL CHECK (form IN ('envelope', 'jws')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- bumped by every license status change, so the bundle scheduler knows the
    -- product's revocation list changed since its last bundle
    revocation_version bigint NOT NULL DEFAULT 0
);

CREATE TABLE customers (
    id         text PRIMARY KEY CHECK (id ~ '^cus_[0-9A-HJKMNP-TV-Z]{26}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_name_idx ON customers (lower(name));

CREATE TABLE staff_users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%@%'),
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'issuer', 'approver', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE staff_sessions (
    token_hash bytea PRIMARY KEY,
    staff_id   bigint NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX staff_sessions_expires_idx ON staff_sessions (expires_at);

-- Public part and metadata only: private keys live in their backend, never here.
-- status: published = in the exported key set (signing or standby); retired = out of it.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{43}$'),
    -- a key belongs to one product: its slots are that product's
    product     text NOT NULL REFERENCES products (id),
    alg         text NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'RS256')),
    purposes    text[] NOT NULL CHECK (cardinality(purposes) > 0 AND purposes <@ ARRAY['license', 'revocation', 'lease']),
    public_jwk  jsonb NOT NULL CHECK (NOT public_jwk ?| ARRAY['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']),
    backend     text NOT NULL CHECK (backend IN ('file', 'pkcs11')),
    -- the backend's handle for the key (PKCS#11 object ID); '' for file keys
    backend_ref text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    not_after   timestamptz,
    retired_at  timestamptz,
    UNIQUE (kid, product)
);

-- The one active signing key per product and purpose, enforced by the primary key.
CREATE TABLE active_keys (
    product text NOT NULL REFERENCES products (id),
    purpose text NOT NULL CHECK (purpose IN ('license', 'revocation', 'lease')),
    kid     text NOT NULL,
    PRIMARY KEY (product, purpose),
    -- a key can only be the active signer of its own product's slots
    FOREIGN KEY (kid, product) REFERENCES signing_keys (kid, product)
);

-- +goose StatementBegin
CREATE FUNCTION active_keys_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.kid = NEW.kid AND k.status = 'published'
                   AND NEW.purpose = ANY (k.purposes)) THEN
        RAISE EXCEPTION 'key % is retired or lacks the % purpose', NEW.kid, NEW.purpose;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER active_keys_check BEFORE INSERT OR UPDATE ON active_keys
    FOR EACH ROW EXECUTE FUNCTION active_keys_check();

CREATE TABLE entitlements (
    id                   text PRIMARY KEY CHECK (id ~ '^ent_[0-9A-HJKMNP-TV-Z]{26}$'),
    customer_id          text NOT NULL REFERENCES customers (id),
    product              text NOT NULL REFERENCES products (id),
    template_name        text NOT NULL,
    template_version     int NOT NULL CHECK (template_version >= 1),
    state                text NOT NULL DEFAULT 'draft'
                         CHECK (state IN ('draft', 'approved', 'rejected', 'cancelled', 'issued')),
    starts_at            timestamptz NOT NULL,
    ends_at              timestamptz NOT NULL,
    overrides            jsonb NOT NULL DEFAULT '{}',
    instance_fingerprint text NOT NULL DEFAULT '',
    contract_ref         text NOT NULL DEFAULT '',
    source               text NOT NULL DEFAULT 'staff' CHECK (source IN ('staff', 'self-service', 'marketplace')),
    -- what the new license replaces (renewal, replacement, top-up); '' for a first one
    supersedes           text NOT NULL DEFAULT '',
    kind                 text NOT NULL DEFAULT 'new' CHECK (kind IN ('new', 'renewal', 'replacement', 'top-up')),
    changeover_seconds   bigint NOT NULL DEFAULT 0 CHECK (changeover_seconds >= 0),
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    decided_by           text NOT NULL DEFAULT '',
    decided_at           timestamptz,
    decision_reason      text NOT NULL DEFAULT '',
    CHECK (starts_at < ends_at),
    CHECK ((kind = 'new') = (supersedes = ''))
);
CREATE INDEX entitlements_customer_idx ON entitlements (customer_id, created_at DESC);
CREATE INDEX entitlements_state_idx ON entitlements (state, created_at DESC);
-- One open successor (renewal, replacement or top-up) per license at a time: two
-- top-ups racing for one license can't both be opened.
CREATE UNIQUE INDEX entitlements_open_successor_idx ON entitlements (supersedes)
    WHERE supersedes <> '' AND state IN ('draft', 'approved');

CREATE TABLE licenses (
    id                   text PRIMARY KEY CHECK (id ~ '^lic_[0-9A-HJKMNP-TV-Z]{26}$'),
    entitlement_id       text NOT NULL UNIQUE REFERENCES entitlements (id),
    customer_id          text NOT NULL REFERENCES customers (id),
    product              text NOT NULL REFERENCES products (id),
    sku                  text NOT NULL,
    template_version     int NOT NULL,
    key_id               text NOT NULL REFERENCES signing_keys (kid),
    issued_at            timestamptz NOT NULL,
    not_before           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    form                 text NOT NULL CHECK (form IN ('envelope', 'jws')),
    -- the terms the payload grants (entitlements.Terms), for top-ups and the lease API
    features             text[] NOT NULL,
    limits               jsonb NOT NULL,
    max_instances        bigint GENERATED ALWAYS AS ((limits ->> 'max_instances')::bigint) STORED,
    grace_period_seconds bigint NOT NULL DEFAULT 0,
    instance_fingerprint text NOT NULL DEFAULT '',
    -- > 0: lease required, with this lifetime
    lease_ttl_seconds    bigint NOT NULL DEFAULT 0 CHECK (lease_ttl_seconds >= 0),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'revoked', 'suspended', 'superseded')),
    status_reason        text NOT NULL DEFAULT '',
    status_changed_at    timestamptz,
    status_changed_by    text NOT NULL DEFAULT '',
    -- when the status takes effect in revocation bundles (entry effective_at)
    status_effective_at  timestamptz,
    CHECK ((status = 'active') = (status_effective_at IS NULL)),
    -- a license is superseded by at most one successor: concurrent top-ups can't fork it
    supersedes           text UNIQUE REFERENCES licenses (id),
    superseded_by        text REFERENCES licenses (id),
    -- the exact signed file, served byte for byte
    file_bytes           bytea NOT NULL,
    file_sha256          bytea NOT NULL,
    file_name            text NOT NULL,
    content_type         text NOT NULL,
    summary              jsonb NOT NULL,
    created_by           text NOT NULL,
    CHECK (not_before < expires_at)
);
CREATE INDEX licenses_customer_idx ON licenses (customer_id, issued_at DESC);
CREATE INDEX licenses_issued_idx ON licenses (issued_at DESC, id DESC);
CREATE INDEX licenses_expiry_idx ON licenses (expires_at) WHERE status = 'active';
-- what goes into a product's revocation bundle
CREATE INDEX licenses_listed_idx ON licenses (product, id) WHERE status <> 'active';

-- Append-only and hash-chained: each row's hash covers its content and the previous
-- row's hash. UPDATE and DELETE are refused by a trigger.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    subject    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL UNIQUE
);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, id);

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

INSERT INTO products (id, name, form) VALUES
    ('genai-smart-router', 'GenAI Smart Router', 'envelope'),
    ('coresdk', 'CoreSDK', 'jws');

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE licenses;
DROP TABLE entitlements;
DROP TABLE active_keys;
DROP FUNCTION active_keys_check();
DROP TABLE signing_keys;
DROP TABLE staff_sessions;
DROP TABLE staff_users;
DROP TABLE customers;
DROP TABLE products;
