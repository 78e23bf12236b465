-- +goose Up
-- Usage metering (docs/spec/usage.md v1, docs/usage.md). What grows with the fleet
-- grows by day and by license: the daily rollups and one row per chain and license.
-- The raw reports are kept only for usage.retention, in monthly partitions that the
-- running issuer creates ahead and drops when they have aged out (docs/operations.md,
-- "Usage reports: partitions and retention").

-- One host's chain per (license, instance): the key bound at seq 1 and the last
-- accepted report, which is all the next report is checked against. Ingestion takes a
-- per-chain advisory lock (internal/storage/usage_ingest.go) before it reads a row.
CREATE TABLE IF NOT EXISTS usage_chains (
    license_id           text NOT NULL REFERENCES licenses (id),
    instance_id          text NOT NULL CHECK (instance_id ~ '^ins_[0-7][0-9A-HJKMNP-TV-Z]{25}$'),
    product              text NOT NULL,
    key_id               text NOT NULL,
    host_key             bytea NOT NULL CHECK (length(host_key) = 32),
    instance_fingerprint text NOT NULL DEFAULT '',
    reporter             text NOT NULL DEFAULT '',
    first_period_start   timestamptz NOT NULL,
    last_seq             bigint NOT NULL CHECK (last_seq >= 1),
    last_hash            bytea NOT NULL CHECK (length(last_hash) = 32),
    last_period_end      timestamptz NOT NULL,
    last_totals          jsonb NOT NULL,
    period_seconds       bigint NOT NULL CHECK (period_seconds >= 1),
    created_at           timestamptz NOT NULL,
    last_report_at       timestamptz NOT NULL,
    -- a restart (docs/usage.md, "Restarts"): the chain this one took over from, and
    -- the chain that took over from this one
    restart_of           text NOT NULL DEFAULT '',
    restarted_by         text NOT NULL DEFAULT '',
    forks                bigint NOT NULL DEFAULT 0,
    gaps                 bigint NOT NULL DEFAULT 0,
    last_refused_at      timestamptz,
    PRIMARY KEY (license_id, instance_id)
);

-- Every accepted report, byte for byte, for usage.retention: what exact duplicates
-- and forks are told apart by, and evidence for staff. Partitioned by the month it
-- was received (never by its period: an air-gapped site's file may arrive months
-- late, and its partition must exist). No unique key across partitions: a chain's
-- seqs are unique because ingestion holds the chain's lock and appends last_seq + 1.
CREATE TABLE IF NOT EXISTS usage_reports (
    received_at     timestamptz NOT NULL,
    license_id      text NOT NULL,
    instance_id     text NOT NULL,
    seq             bigint NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    envelope_sha256 bytea NOT NULL,
    envelope        bytea NOT NULL,
    counters        jsonb NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS usage_reports_chain_idx ON usage_reports (license_id, instance_id, seq);

-- The daily rollups: per license, day, instance and counter. A report's counts go to
-- the UTC day holding the last second of its period.
CREATE TABLE IF NOT EXISTS usage_daily (
    license_id  text NOT NULL,
    day         date NOT NULL,
    instance_id text NOT NULL,
    counter     text NOT NULL CHECK (counter ~ '^[a-z0-9_]{1,64}$'),
    amount      bigint NOT NULL CHECK (amount >= 0),
    reports     bigint NOT NULL CHECK (reports >= 0),
    PRIMARY KEY (license_id, day, instance_id, counter)
);

-- One row per license that has reported: its totals over the term, its budget, and
-- what counts against it (used: the term's tokens, or the rolling window's as of
-- used_at). permille is used/budget, so the dashboard finds the licenses past 80 %
-- through a small partial index.
CREATE TABLE IF NOT EXISTS usage_licenses (
    license_id      text PRIMARY KEY REFERENCES licenses (id),
    customer_id     text NOT NULL,
    tokens          bigint NOT NULL DEFAULT 0,
    requests        bigint NOT NULL DEFAULT 0,
    reports         bigint NOT NULL DEFAULT 0,
    budget          bigint NOT NULL DEFAULT 0,
    window_seconds  bigint NOT NULL DEFAULT 0,
    used            bigint NOT NULL DEFAULT 0,
    permille        bigint NOT NULL DEFAULT 0,
    used_at         timestamptz,
    first_report_at timestamptz NOT NULL,
    last_report_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_licenses_past80_idx ON usage_licenses (permille DESC, license_id) WHERE permille >= 800;
CREATE INDEX IF NOT EXISTS usage_licenses_window_idx ON usage_licenses (license_id) WHERE window_seconds > 0;

-- Refused reports staff should see: forks and gaps, by reports the chain's own key
-- signed. One row per (chain, kind, seq), counted, so a host that keeps re-sending a
-- fork adds nothing but a count.
CREATE TABLE IF NOT EXISTS usage_incidents (
    license_id      text NOT NULL,
    instance_id     text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('fork', 'gap')),
    seq             bigint NOT NULL,
    next_seq        bigint NOT NULL DEFAULT 0,
    envelope_sha256 bytea NOT NULL,
    first_at        timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,
    count           bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (license_id, instance_id, kind, seq)
);

-- The 80 % and 100 % warnings: a unique row per license and threshold, written in the
-- batch that reaches it, so however many batches and replicas race, it is written
-- once; and one mail row per portal user, sent after the commit (an outbox).
CREATE TABLE IF NOT EXISTS usage_warnings (
    license_id  text NOT NULL REFERENCES licenses (id),
    threshold   int NOT NULL CHECK (threshold IN (80, 100)),
    customer_id text NOT NULL,
    crossed_at  timestamptz NOT NULL,
    used        bigint NOT NULL,
    budget      bigint NOT NULL,
    PRIMARY KEY (license_id, threshold)
);
CREATE INDEX IF NOT EXISTS usage_warnings_crossed_idx ON usage_warnings (crossed_at DESC);

CREATE TABLE IF NOT EXISTS usage_warning_mails (
    license_id  text NOT NULL,
    threshold   int NOT NULL,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL,
    claimed_at  timestamptz,
    sent_at     timestamptz,
    attempts    int NOT NULL DEFAULT 0,
    last_error  text NOT NULL DEFAULT '',
    PRIMARY KEY (license_id, threshold, email),
    FOREIGN KEY (license_id, threshold) REFERENCES usage_warnings (license_id, threshold)
);
CREATE INDEX IF NOT EXISTS usage_warning_mails_unsent_idx ON usage_warning_mails (created_at) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE IF EXISTS usage_warning_mails;
DROP TABLE IF EXISTS usage_warnings;
DROP TABLE IF EXISTS usage_incidents;
DROP TABLE IF EXISTS usage_licenses;
DROP TABLE IF EXISTS usage_daily;
DROP TABLE IF EXISTS usage_reports;
DROP TABLE IF EXISTS usage_chains;
