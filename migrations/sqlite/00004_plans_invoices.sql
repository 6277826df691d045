-- +goose Up
-- The platform's price list: each change to a plan is a new version; a tenant stays on its
-- version until moved. Global: shared by every tenant (a reference table on Citus).
CREATE TABLE plans (
    code       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    currency   TEXT NOT NULL,
    base_fee   INTEGER NOT NULL CHECK (base_fee >= 0),
    prices     TEXT NOT NULL DEFAULT '[]',
    trial_days INTEGER NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (code, version)
);

-- Which plan version a tenant is on from when: the history proration reads.
CREATE TABLE subscription_changes (
    tenant_id    TEXT NOT NULL REFERENCES orgs (id),
    id           TEXT NOT NULL,
    plan_code    TEXT NOT NULL,
    plan_version INTEGER NOT NULL,
    effective_at DATETIME NOT NULL,
    created_at   DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (plan_code, plan_version) REFERENCES plans (code, version)
);
CREATE INDEX subscription_changes_time_idx ON subscription_changes (tenant_id, effective_at);

-- Finalised invoices are immutable: only the status and the Stripe push may change.
CREATE TABLE invoices (
    tenant_id         TEXT NOT NULL REFERENCES orgs (id),
    id                TEXT NOT NULL,
    number            TEXT NOT NULL,
    period_start      DATETIME NOT NULL,
    period_end        DATETIME NOT NULL,
    currency          TEXT NOT NULL,
    subtotal          INTEGER NOT NULL,
    discount          INTEGER NOT NULL,
    tax               INTEGER NOT NULL,
    credit_applied    INTEGER NOT NULL,
    total             INTEGER NOT NULL,
    lines             TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void')),
    push_status       TEXT NOT NULL DEFAULT 'pending' CHECK (push_status IN ('pending', 'pushed', 'failed', 'skipped')),
    push_error        TEXT NOT NULL DEFAULT '',
    stripe_invoice_id TEXT NOT NULL DEFAULT '',
    finalized_at      DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, period_start)
);

-- What has been billed of each closed period, per meter: late events are the ledger's total
-- minus this, and go into the next invoice as an adjustment.
CREATE TABLE billed_usage (
    tenant_id    TEXT NOT NULL REFERENCES orgs (id),
    period_start DATETIME NOT NULL,
    meter        TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, period_start, meter)
);

ALTER TABLE billing_accounts ADD COLUMN anchor_day INTEGER NOT NULL DEFAULT 1;
ALTER TABLE billing_accounts ADD COLUMN tax_rate_bp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE billing_accounts ADD COLUMN credit_balance INTEGER NOT NULL DEFAULT 0;


CREATE TRIGGER invoices_immutable BEFORE UPDATE OF number, period_start, period_end, currency, subtotal, discount, tax, credit_applied, total, lines ON invoices
BEGIN SELECT RAISE(ABORT, 'a finalised invoice is immutable'); END;
CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
BEGIN SELECT RAISE(ABORT, 'a finalised invoice is immutable'); END;

-- +goose Down
ALTER TABLE billing_accounts DROP COLUMN credit_balance;
ALTER TABLE billing_accounts DROP COLUMN tax_rate_bp;
ALTER TABLE billing_accounts DROP COLUMN anchor_day;
DROP TABLE billed_usage;
DROP TABLE invoices;
DROP TABLE subscription_changes;
DROP TABLE plans;
