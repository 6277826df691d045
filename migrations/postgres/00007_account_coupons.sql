-- +goose Up
-- Coupons on a tenant's account, applied to each invoice while they stay: [{code, percent_off_bp, amount_off}].
ALTER TABLE billing_accounts ADD COLUMN coupons text NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN coupons;
