-- +goose Up
-- The console's plots and filters read the lease history and the audit trail by time.
-- Both tables are append-only in time order, so BRIN indexes (a few pages, nearly free
-- to maintain on the lease API's hot insert) serve those range scans.
CREATE INDEX lease_events_at_brin ON lease_events USING brin (at);
CREATE INDEX audit_events_at_brin ON audit_events USING brin (at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);

-- +goose Down
DROP INDEX audit_events_action_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_at_brin;
DROP INDEX lease_events_at_brin;
