-- +goose Up
-- A plan's add-ons ([{code, name, fee, prices}]) and the ones a tenant has taken (["code", …]).
ALTER TABLE plans ADD COLUMN add_ons text NOT NULL DEFAULT '[]';
ALTER TABLE billing_accounts ADD COLUMN add_ons text NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN add_ons;
ALTER TABLE plans DROP COLUMN add_ons;
