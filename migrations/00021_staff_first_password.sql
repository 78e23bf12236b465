-- +goose Up
-- A password an admin set (a new account's first one, or a reset) is the admin's,
-- not the staff member's: it must be changed at the first sign-in before anything
-- else. The operator's bootstrap and recovery accounts set their own.
ALTER TABLE staff_users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE staff_users DROP COLUMN must_change_password;
