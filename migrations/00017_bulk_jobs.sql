-- +goose Up
-- A bulk job (`issuer license issue --all-approved`): what it set out to do, so its
-- results can be read again after the stream that reported them broke
-- (docs/operations.md, "Bulk jobs"). Lease tokens are never stored, only whether the
-- line carrying one was written to the stream.
CREATE TABLE IF NOT EXISTS bulk_jobs (
    id          text PRIMARY KEY CHECK (id ~ '^job_[0-9A-HJKMNP-TV-Z]{26}$'),
    kind        text NOT NULL CHECK (kind IN ('issue-all-approved')),
    actor       text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    total       integer NOT NULL CHECK (total >= 0)
);
CREATE INDEX IF NOT EXISTS bulk_jobs_started_at_idx ON bulk_jobs (started_at);

-- One row per entitlement the job took, written with the job before any work. The
-- result columns are filled after each item; an item without them (the issuer died
-- first) is resolved from licenses.entitlement_id when the job is read.
CREATE TABLE IF NOT EXISTS bulk_job_items (
    job_id                text NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    n                     integer NOT NULL CHECK (n >= 1),
    entitlement_id        text NOT NULL,
    license_id            text,
    error                 text,
    lease_token_written   boolean NOT NULL DEFAULT false,
    done_at               timestamptz,
    PRIMARY KEY (job_id, n)
);

-- +goose Down
DROP TABLE IF EXISTS bulk_job_items;
DROP TABLE IF EXISTS bulk_jobs;
