-- +goose Up
-- Staff sessions get an idle lifetime beside their absolute one (expires_at): a session
-- unused for 30 minutes ends. The client address is kept for the "your sessions" page.
ALTER TABLE staff_sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE staff_sessions ADD COLUMN client_addr text NOT NULL DEFAULT '';
ALTER TABLE staff_sessions ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;

-- +goose Down
ALTER TABLE staff_sessions DROP COLUMN id;
ALTER TABLE staff_sessions DROP COLUMN client_addr;
ALTER TABLE staff_sessions DROP COLUMN last_seen_at;
