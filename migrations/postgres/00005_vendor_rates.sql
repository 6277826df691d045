-- +goose Up
-- What a vendor's managed seat costs the platform: the vendor organisation's own row.
CREATE TABLE vendor_rates (
    tenant_id           uuid NOT NULL REFERENCES orgs (id), -- the vendor organisation
    currency            text NOT NULL,
    cost_per_seat_hour  bigint NOT NULL CHECK (cost_per_seat_hour >= 0),
    hours_per_seat_day  integer NOT NULL DEFAULT 8 CHECK (hours_per_seat_day BETWEEN 1 AND 24),
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE vendor_rates ENABLE ROW LEVEL SECURITY;
    ALTER TABLE vendor_rates FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON vendor_rates
        USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on')
        WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on');
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE vendor_rates;
