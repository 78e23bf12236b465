-- +goose Up
-- Staff find licenses, entitlements and customers by a contract reference's beginning
-- ("PO-2026" finds PO-2026-0042), case-insensitively: a range scan of this index
-- (text_pattern_ops compares bytes, so the range holds with a bound parameter).
CREATE INDEX IF NOT EXISTS entitlements_contract_ref_idx ON entitlements (lower(contract_ref) text_pattern_ops)
    WHERE contract_ref <> '';
-- An entitlement list searched by a license ID finds its renewals, replacements and
-- top-ups, whatever their state (the unique index covers only the open ones).
CREATE INDEX IF NOT EXISTS entitlements_supersedes_idx ON entitlements (supersedes) WHERE supersedes <> '';

-- +goose Down
DROP INDEX IF EXISTS entitlements_supersedes_idx;
DROP INDEX IF EXISTS entitlements_contract_ref_idx;
