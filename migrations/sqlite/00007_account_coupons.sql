-- +goose Up
ALTER TABLE billing_accounts ADD COLUMN coupons TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN coupons;
