-- +goose Up
-- A tenant's billing standing: its Stripe customer and where it is in dunning.
CREATE TABLE billing_accounts (
    tenant_id          uuid NOT NULL REFERENCES orgs (id),
    stripe_customer_id text NOT NULL DEFAULT '',
    has_payment_method boolean NOT NULL DEFAULT false,
    payment_status     text NOT NULL DEFAULT 'ok' CHECK (payment_status IN ('ok', 'failed')),
    failed_at          timestamptz,
    grace_until        timestamptz,
    reminders_sent     integer NOT NULL DEFAULT 0,
    last_reminder_at   timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE INDEX billing_accounts_customer_idx ON billing_accounts (stripe_customer_id);

-- Stripe webhook events already processed, by Stripe's event id: a replay is recognised here
-- before anything changes. Global: an event arrives before its tenant is known.
CREATE TABLE stripe_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    org_id       uuid, -- the tenant it applied to, if any
    created      timestamptz NOT NULL,
    processed_at timestamptz NOT NULL
);

-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE billing_accounts ENABLE ROW LEVEL SECURITY;
    ALTER TABLE billing_accounts FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON billing_accounts
        USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on')
        WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
               OR current_setting('app.platform', true) = 'on');
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE stripe_events;
DROP TABLE billing_accounts;
