-- +goose Up
-- Release downloads (customer-api.md v1.1): the verifier customers install, from the
-- folder named by releases.dir, recorded like a license download (who, which file,
-- when, from where) with no license.
ALTER TABLE downloads DROP CONSTRAINT downloads_what_check;
ALTER TABLE downloads ADD CONSTRAINT downloads_what_check CHECK (what IN ('file', 'summary', 'checklist', 'bundle', 'release'));
ALTER TABLE downloads ADD COLUMN file_name text NOT NULL DEFAULT '';
ALTER TABLE downloads ADD CONSTRAINT downloads_release_file CHECK ((what = 'release') = (file_name <> '' AND license_id IS NULL));

-- +goose Down
DELETE FROM downloads WHERE what = 'release';
ALTER TABLE downloads DROP CONSTRAINT downloads_release_file;
ALTER TABLE downloads DROP COLUMN file_name;
ALTER TABLE downloads DROP CONSTRAINT downloads_what_check;
ALTER TABLE downloads ADD CONSTRAINT downloads_what_check CHECK (what IN ('file', 'summary', 'checklist', 'bundle'));
