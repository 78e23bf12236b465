-- +goose Up
-- A BRIN range filled after the index was built is unsummarized until VACUUM, and an
-- unsummarized range matches every query: on an insert-only table autovacuum comes only
-- after a fifth of the table is new, so a time-range read (the console's lease plot,
-- the audit filters) would recheck millions of rows. autosummarize asks autovacuum to
-- summarize each range as soon as it is full.
ALTER INDEX lease_events_at_brin SET (autosummarize = on);
ALTER INDEX audit_events_at_brin SET (autosummarize = on);

-- +goose Down
ALTER INDEX audit_events_at_brin RESET (autosummarize);
ALTER INDEX lease_events_at_brin RESET (autosummarize);
