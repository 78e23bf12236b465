-- +goose Up
-- "Expiring within N days" pages in expiry order: the index carries the tie-breaker.
DROP INDEX licenses_expiry_idx;
CREATE INDEX licenses_expiry_idx ON licenses (expires_at, id) WHERE status = 'active';

-- Lease grants and refusals per hour, rolled up from lease_events by the running
-- issuer once an hour has closed (the console's plot reads 168 rows, not a week of
-- events). Not written on the lease path: it adds nothing to a renewal's cost.
CREATE TABLE lease_hourly (
    hour    timestamptz NOT NULL,
    refused boolean NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (hour, refused)
);

-- +goose Down
DROP TABLE lease_hourly;
DROP INDEX licenses_expiry_idx;
CREATE INDEX licenses_expiry_idx ON licenses (expires_at) WHERE status = 'active';
