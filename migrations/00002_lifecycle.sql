-- +goose Up
-- Every template version that has issued a license, with the fingerprint of its
-- definition: a version is immutable once used (internal/templates).
CREATE TABLE template_versions (
    name        text NOT NULL,
    version     int NOT NULL,
    product     text NOT NULL REFERENCES products (id),
    fingerprint bytea NOT NULL,
    definition  jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- The issuer's one revocation sequence. Publishing locks this row, takes the next
-- number and stores the bundle in the same transaction: sequences are strictly
-- increasing, never reused, and gapless even when publishes race or fail.
CREATE TABLE bundle_counter (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_sequence bigint NOT NULL DEFAULT 0
);
INSERT INTO bundle_counter DEFAULT VALUES;

-- Every published bundle, kept: the exact signed bytes are served for download.
CREATE TABLE revocation_bundles (
    sequence       bigint PRIMARY KEY CHECK (sequence >= 1),
    product        text NOT NULL REFERENCES products (id),
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    key_id         text NOT NULL REFERENCES signing_keys (kid),
    entries        int NOT NULL,
    -- the product's revocation_version the bundle reflects
    source_version bigint NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('changed', 'scheduled', 'manual')),
    file_bytes     bytea NOT NULL,
    file_sha256    bytea NOT NULL,
    payload_sha256 bytea NOT NULL,
    created_by     text NOT NULL,
    CHECK (issued_at < expires_at)
);
CREATE INDEX revocation_bundles_product_idx ON revocation_bundles (product, sequence DESC);

-- A license status change bumps its product's revocation_version in the same
-- transaction, whoever makes it.
-- +goose StatementBegin
CREATE FUNCTION licenses_bump_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products SET revocation_version = revocation_version + 1 WHERE id = NEW.product;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER licenses_bump_revocation AFTER UPDATE OF status, status_effective_at ON licenses
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.status_effective_at IS DISTINCT FROM NEW.status_effective_at)
    EXECUTE FUNCTION licenses_bump_revocation();

-- +goose Down
DROP TRIGGER licenses_bump_revocation ON licenses;
DROP FUNCTION licenses_bump_revocation();
DROP TABLE revocation_bundles;
DROP TABLE bundle_counter;
DROP TABLE template_versions;
