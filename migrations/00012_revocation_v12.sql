-- +goose Up
-- formats.md v1.2: bundle sequences are per (issuer, product), and never reused, not
-- even after the database is restored from a backup (docs/operations.md, "Restore").
--
-- Each product has its own counter row. A publish locks it, and takes
--     sequence = max(last_sequence + 1, the database clock in Unix milliseconds)
-- waiting a millisecond when two publishes would share one. So every sequence is at
-- most the time it was published at; a database restored from a backup, whatever it
-- lost, publishes above every bundle the lost interval published, because its clock
-- is later than theirs. last_issued_at keeps issued_at from going backwards as the
-- sequence goes up.
CREATE TABLE bundle_sequences (
    product        text PRIMARY KEY REFERENCES products (id),
    last_sequence  bigint NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    last_issued_at timestamptz
);
-- The old counter was shared by both products: each product's own starts there, so no
-- sequence it already published can come again.
INSERT INTO bundle_sequences (product, last_sequence, last_issued_at)
SELECT p.id, (SELECT last_sequence FROM bundle_counter),
       (SELECT max(b.issued_at) FROM revocation_bundles b WHERE b.product = p.id)
FROM products p;
DROP TABLE bundle_counter;

ALTER TABLE revocation_bundles DROP CONSTRAINT revocation_bundles_pkey;
ALTER TABLE revocation_bundles ADD PRIMARY KEY (product, sequence);
DROP INDEX revocation_bundles_product_idx; -- the primary key serves it

-- Revocations the database lacks but a published bundle shows (issuer recover
-- --from-bundle): licenses issued after the backup the database was restored from,
-- and revoked or suspended before the loss. Bundles keep listing them; a revocation is
-- final (formats.md v1.2). Entries for licenses the database has are applied to the
-- license rows instead.
CREATE TABLE recovered_entries (
    product         text NOT NULL REFERENCES products (id),
    license_id      text NOT NULL CHECK (license_id ~ '^lic_[0-9A-HJKMNP-TV-Z]{26}$'),
    status          text NOT NULL CHECK (status IN ('revoked', 'suspended', 'superseded')),
    reason          text NOT NULL,
    effective_at    timestamptz NOT NULL,
    superseded_by   text NOT NULL DEFAULT '',
    bundle_sequence bigint NOT NULL,
    recovered_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product, license_id)
);

-- One row per product recovered from a published bundle. While now < at + a
-- license's lease TTL, no host may take a new lease slot of that product's
-- licenses: leases granted after the backup are unknown to this database, and until
-- they have all expired every slot counts as taken (docs/operations.md).
CREATE TABLE recoveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    product         text NOT NULL REFERENCES products (id),
    bundle_sequence bigint NOT NULL,
    bundle_sha256   bytea NOT NULL,
    actor           text NOT NULL,
    report          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX recoveries_product_idx ON recoveries (product, at DESC);

-- Chain revocation (docs/lifecycle.md): a predecessor blocked together with its
-- successor names it here, so reinstating the successor, or restoring the previous
-- license, puts the predecessor back as it was.
ALTER TABLE licenses ADD COLUMN blocked_with text REFERENCES licenses (id);

-- "Restore the previous license": when a refunded or disputed successor's
-- supersession is lifted, the predecessor is active again and may have a new
-- successor; the lifted one keeps its `supersedes` for the lineage.
ALTER TABLE licenses ADD COLUMN supersession_lifted_at timestamptz;
ALTER TABLE licenses DROP CONSTRAINT licenses_supersedes_key;
CREATE UNIQUE INDEX licenses_supersedes_key ON licenses (supersedes)
    WHERE supersedes IS NOT NULL AND supersession_lifted_at IS NULL;
CREATE INDEX licenses_supersedes_idx ON licenses (supersedes) WHERE supersedes IS NOT NULL;

-- +goose Down
DROP INDEX licenses_supersedes_idx;
DROP INDEX licenses_supersedes_key;
ALTER TABLE licenses ADD CONSTRAINT licenses_supersedes_key UNIQUE (supersedes);
ALTER TABLE licenses DROP COLUMN supersession_lifted_at;
ALTER TABLE licenses DROP COLUMN blocked_with;
DROP TABLE recoveries;
DROP TABLE recovered_entries;
CREATE INDEX revocation_bundles_product_idx ON revocation_bundles (product, sequence DESC);
ALTER TABLE revocation_bundles DROP CONSTRAINT revocation_bundles_pkey;
ALTER TABLE revocation_bundles ADD PRIMARY KEY (sequence);
CREATE TABLE bundle_counter (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_sequence bigint NOT NULL DEFAULT 0
);
INSERT INTO bundle_counter (last_sequence) SELECT coalesce(max(last_sequence), 0) FROM bundle_sequences;
DROP TABLE bundle_sequences;
