-- +goose Up
-- The usage ledger: append-only, one row per billable event, idempotent per tenant.
CREATE TABLE usage_events (
    tenant_id       uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL,
    meter           text NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity >= 0),
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    idempotency_key text NOT NULL,
    channel         text NOT NULL DEFAULT '',
    seat_kind       text NOT NULL DEFAULT '',
    vendor_id       text NOT NULL DEFAULT '',
    subject         text NOT NULL DEFAULT '',
    dimensions      text NOT NULL DEFAULT '{}',
    source          text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_meter_time_idx ON usage_events (tenant_id, occurred_at, meter);

-- Days whose rollups must be recomputed: every ingest bumps the day's version in the same
-- transaction as its events; the rollup task clears a day only at the version it computed.
CREATE TABLE usage_dirty_days (
    tenant_id uuid NOT NULL REFERENCES orgs (id),
    day       text NOT NULL, -- YYYY-MM-DD, UTC
    version   bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Hourly and daily totals per meter, recomputed from the ledger (never incremented), so a
-- rerun gives the same numbers.
CREATE TABLE usage_rollups (
    tenant_id    uuid NOT NULL REFERENCES orgs (id),
    meter        text NOT NULL,
    granularity  text NOT NULL CHECK (granularity IN ('hour', 'day')),
    bucket_start timestamptz NOT NULL,
    quantity     bigint NOT NULL,
    events       bigint NOT NULL,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, meter, granularity, bucket_start)
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['usage_events', 'usage_dirty_days', 'usage_rollups'] LOOP
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
DROP TABLE usage_rollups;
DROP TABLE usage_dirty_days;
DROP TABLE usage_events;
