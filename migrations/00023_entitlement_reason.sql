-- +goose Up
-- Why an entitlement was opened: the reason typed on a renewal's, replacement's or
-- top-up's form, or a note for the approver. Shown on the decision page and kept in
-- the audit event of its creation.
ALTER TABLE entitlements ADD COLUMN IF NOT EXISTS reason text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE entitlements DROP COLUMN IF EXISTS reason;
