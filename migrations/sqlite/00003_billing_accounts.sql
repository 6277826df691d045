-- +goose Up
CREATE TABLE billing_accounts (
    tenant_id          TEXT NOT NULL REFERENCES orgs (id),
    stripe_customer_id TEXT NOT NULL DEFAULT '',
    has_payment_method INTEGER NOT NULL DEFAULT 0,
    payment_status     TEXT NOT NULL DEFAULT 'ok' CHECK (payment_status IN ('ok', 'failed')),
    failed_at          DATETIME,
    grace_until        DATETIME,
    reminders_sent     INTEGER NOT NULL DEFAULT 0,
    last_reminder_at   DATETIME,
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE INDEX billing_accounts_customer_idx ON billing_accounts (stripe_customer_id);

CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    org_id       TEXT,
    created      DATETIME NOT NULL,
    processed_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE stripe_events;
DROP TABLE billing_accounts;
