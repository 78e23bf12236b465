-- +goose Up
-- A customer API token made by a portal user stops working when that user is
-- disabled (a departed employee's scripts must not keep reading the licenses);
-- tokens staff made for the customer have no owner and keep working.
ALTER TABLE customer_tokens ADD COLUMN portal_user_id bigint REFERENCES portal_users (id);
UPDATE customer_tokens t SET portal_user_id = u.id FROM portal_users u
    WHERE t.created_by = 'portal:' || u.email AND u.customer_id = t.customer_id;

-- +goose Down
ALTER TABLE customer_tokens DROP COLUMN portal_user_id;
