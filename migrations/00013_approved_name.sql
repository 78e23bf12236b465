-- +goose Up
-- The customer's name as it was when the entitlement was approved: the license is
-- signed with it, so a rename between approval and issue can't change what the
-- approver approved (every other signed field is on the entitlement already).
ALTER TABLE entitlements ADD COLUMN approved_customer_name text NOT NULL DEFAULT '';
UPDATE entitlements e SET approved_customer_name = c.name FROM customers c
    WHERE c.id = e.customer_id AND e.state IN ('approved', 'issued');

-- +goose Down
ALTER TABLE entitlements DROP COLUMN approved_customer_name;
