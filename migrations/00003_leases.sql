-- +goose Up
-- A lease-required license's bearer token, as a SHA-256 hash only (the token is 32
-- random bytes, shown once). One per license; rotating replaces it. Every lease batch
-- takes a transaction-scoped advisory lock per license (pg_advisory_xact_lock, in key
-- order; shared for renewals, exclusive when a host may take a new slot, and for a
-- release) until it commits: that is what serialises seat decisions across replicas
-- (internal/storage/leases.go).
CREATE TABLE lease_tokens (
    license_id text PRIMARY KEY REFERENCES licenses (id),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);

-- One slot per (license, instance): the current lease of that host. A slot counts
-- against max_instances while expires_at > now and it is not released.
CREATE TABLE leases (
    license_id           text NOT NULL REFERENCES licenses (id),
    instance_fingerprint text NOT NULL,
    lease_id             text NOT NULL UNIQUE CHECK (lease_id ~ '^lea_[0-9A-HJKMNP-TV-Z]{26}$'),
    granted_at           timestamptz NOT NULL,
    renewed_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    released_at          timestamptz,
    PRIMARY KEY (license_id, instance_fingerprint)
) WITH (fillfactor = 70); -- room on each page, so a renewal (no indexed column changes) is a HOT update

-- Every grant, renewal, refusal and release. Append-only history for staff; no
-- foreign key (the lease path has just read the license in the same transaction, and
-- a per-row key check would lock the license row once more on the hottest path).
-- Growth and partitioning: docs/leases.md.
-- The key leads with the license: one index serves both uniqueness and the
-- per-license history, so each insert maintains one btree, not two.
CREATE TABLE lease_events (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    at                   timestamptz NOT NULL,
    license_id           text NOT NULL,
    instance_fingerprint text NOT NULL,
    lease_id             text NOT NULL DEFAULT '',
    outcome              text NOT NULL CHECK (outcome IN ('granted', 'renewed', 'refused', 'released')),
    reason               text NOT NULL DEFAULT '',
    expires_at           timestamptz,
    PRIMARY KEY (license_id, id)
);

-- +goose Down
DROP TABLE lease_events;
DROP TABLE leases;
DROP TABLE lease_tokens;
