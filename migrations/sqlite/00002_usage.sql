-- +goose Up
-- The usage ledger: append-only, one row per billable event, idempotent per tenant.
CREATE TABLE usage_events (
    tenant_id       TEXT NOT NULL REFERENCES orgs (id),
    id              TEXT NOT NULL,
    meter           TEXT NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity >= 0),
    occurred_at     DATETIME NOT NULL,
    recorded_at     DATETIME NOT NULL,
    idempotency_key TEXT NOT NULL,
    channel         TEXT NOT NULL DEFAULT '',
    seat_kind       TEXT NOT NULL DEFAULT '',
    vendor_id       TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    dimensions      TEXT NOT NULL DEFAULT '{}',
    source          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_meter_time_idx ON usage_events (tenant_id, occurred_at, meter);

CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events
BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END;
CREATE TRIGGER usage_events_no_delete BEFORE DELETE ON usage_events
BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END;

CREATE TABLE usage_dirty_days (
    tenant_id TEXT NOT NULL REFERENCES orgs (id),
    day       TEXT NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE usage_rollups (
    tenant_id    TEXT NOT NULL REFERENCES orgs (id),
    meter        TEXT NOT NULL,
    granularity  TEXT NOT NULL CHECK (granularity IN ('hour', 'day')),
    bucket_start DATETIME NOT NULL,
    quantity     INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    computed_at  DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, meter, granularity, bucket_start)
);

-- +goose Down
DROP TABLE usage_rollups;
DROP TABLE usage_dirty_days;
DROP TABLE usage_events;
