-- +goose Up
-- Allowance alerts already sent: one per tenant, period, meter and threshold (80 or 100 %).
CREATE TABLE usage_alerts (
    tenant_id    uuid NOT NULL REFERENCES orgs (id),
    period_start timestamptz NOT NULL,
    meter        text NOT NULL,
    threshold    integer NOT NULL CHECK (threshold IN (80, 100)),
    quantity     bigint NOT NULL,
    included     bigint NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, period_start, meter, threshold)
);

-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE usage_alerts ENABLE ROW LEVEL SECURITY;
    ALTER TABLE usage_alerts FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON usage_alerts
        USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on')
        WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on');
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE usage_alerts;
