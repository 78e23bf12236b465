-- +goose Up
-- A lease batch must not commit after its requests were answered 503 (lease-api.md:
-- a 503 means nothing changed; docs/operations.md, "Deadlines"). The batch sets
-- metrum.lease_commit_by (SET LOCAL, from its deadline, on the database's own clock)
-- and this check runs at COMMIT: a COMMIT the database only gets to after that time
-- (it sat in the socket of a frozen or stalled server while the issuer gave up and
-- answered) rolls the batch back instead. Every batch that changes anything writes
-- lease_events rows, so a deferred check on them sees every such batch; a release,
-- which sets no deadline, is not checked.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION lease_commit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- After a SET LOCAL, a custom setting reads '' in later transactions of the session.
    IF clock_timestamp() > NULLIF(current_setting('metrum.lease_commit_by', true), '')::timestamptz THEN
        RAISE EXCEPTION 'lease batch reached COMMIT after its deadline (%): rolled back',
            current_setting('metrum.lease_commit_by') USING ERRCODE = '57014';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS lease_events_commit_guard ON lease_events;
CREATE CONSTRAINT TRIGGER lease_events_commit_guard AFTER INSERT ON lease_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lease_commit_guard();

-- metrum_assert raises when ok is false, so a check inside a pipelined batch aborts
-- the transaction before the COMMIT queued behind it can run (a check made by the
-- client after reading the answer would come after that COMMIT).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION metrum_assert(ok boolean, msg text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', msg USING ERRCODE = '40001';
    END IF;
    RETURN true;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER IF EXISTS lease_events_commit_guard ON lease_events;
DROP FUNCTION IF EXISTS lease_commit_guard();
DROP FUNCTION IF EXISTS metrum_assert(boolean, text);
