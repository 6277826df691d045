-- +goose Up
-- The platform's price list: each change to a plan is a new version; a tenant stays on its
-- version until moved. Global: shared by every tenant (a reference table on Citus).
CREATE TABLE plans (
    code       text NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    currency   text NOT NULL,
    base_fee   bigint NOT NULL CHECK (base_fee >= 0),
    prices     text NOT NULL DEFAULT '[]',
    trial_days integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (code, version)
);

-- Which plan version a tenant is on from when: the history proration reads.
CREATE TABLE subscription_changes (
    tenant_id    uuid NOT NULL REFERENCES orgs (id),
    id           uuid NOT NULL,
    plan_code    text NOT NULL,
    plan_version integer NOT NULL,
    effective_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (plan_code, plan_version) REFERENCES plans (code, version)
);
CREATE INDEX subscription_changes_time_idx ON subscription_changes (tenant_id, effective_at);

-- Finalised invoices are immutable: the app role may update only the status and the Stripe
-- push columns (column grants in internal/db GrantApp), and delete nothing.
CREATE TABLE invoices (
    tenant_id         uuid NOT NULL REFERENCES orgs (id),
    id                uuid NOT NULL,
    number            text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    currency          text NOT NULL,
    subtotal          bigint NOT NULL,
    discount          bigint NOT NULL,
    tax               bigint NOT NULL,
    credit_applied    bigint NOT NULL,
    total             bigint NOT NULL,
    lines             text NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void')),
    push_status       text NOT NULL DEFAULT 'pending' CHECK (push_status IN ('pending', 'pushed', 'failed', 'skipped')),
    push_error        text NOT NULL DEFAULT '',
    stripe_invoice_id text NOT NULL DEFAULT '',
    finalized_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, period_start)
);

-- What has been billed of each closed period, per meter: late events are the ledger's total
-- minus this, and go into the next invoice as an adjustment.
CREATE TABLE billed_usage (
    tenant_id    uuid NOT NULL REFERENCES orgs (id),
    period_start timestamptz NOT NULL,
    meter        text NOT NULL,
    quantity     bigint NOT NULL,
    PRIMARY KEY (tenant_id, period_start, meter)
);

ALTER TABLE billing_accounts ADD COLUMN anchor_day integer NOT NULL DEFAULT 1;
ALTER TABLE billing_accounts ADD COLUMN tax_rate_bp bigint NOT NULL DEFAULT 0;
ALTER TABLE billing_accounts ADD COLUMN credit_balance bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subscription_changes', 'invoices', 'billed_usage'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.platform', true) = 'on')
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.platform', true) = 'on')$p$, t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN credit_balance;
ALTER TABLE billing_accounts DROP COLUMN tax_rate_bp;
ALTER TABLE billing_accounts DROP COLUMN anchor_day;
DROP TABLE billed_usage;
DROP TABLE invoices;
DROP TABLE subscription_changes;
DROP TABLE plans;
