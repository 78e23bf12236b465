-- +goose Up
-- lease-api.md v1.1: a release frees its slot at once only within the license's release
-- budget. freed_early records which released leases did; the others keep occupying
-- their slot until the last lease signed for them expires. A release no longer
-- shortens expires_at: it stays the expiry of the last signed lease, which the host
-- still holds and which stays valid offline.
ALTER TABLE leases ADD COLUMN freed_early boolean NOT NULL DEFAULT false;

-- A release before v1.1 shortened expires_at to the release time, so those rows are
-- expired and occupy nothing; mark them freed for the record.
UPDATE leases SET freed_early = true WHERE released_at IS NOT NULL;

-- The license's release budget: its release_budget limit if present, else its
-- max_instances (NULL with neither: no instance limit, so releases always free).
ALTER TABLE licenses ADD COLUMN release_budget bigint
    GENERATED ALWAYS AS ((coalesce(limits ->> 'release_budget', limits ->> 'max_instances'))::bigint) STORED;

-- +goose Down
ALTER TABLE licenses DROP COLUMN release_budget;
ALTER TABLE leases DROP COLUMN freed_early;
