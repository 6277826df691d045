-- +goose Up
ALTER TABLE plans ADD COLUMN add_ons TEXT NOT NULL DEFAULT '[]';
ALTER TABLE billing_accounts ADD COLUMN add_ons TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN add_ons;
ALTER TABLE plans DROP COLUMN add_ons;
