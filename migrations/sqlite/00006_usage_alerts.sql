-- +goose Up
CREATE TABLE usage_alerts (
    tenant_id    TEXT NOT NULL REFERENCES orgs (id),
    period_start DATETIME NOT NULL,
    meter        TEXT NOT NULL,
    threshold    INTEGER NOT NULL CHECK (threshold IN (80, 100)),
    quantity     INTEGER NOT NULL,
    included     INTEGER NOT NULL,
    sent_at      DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, period_start, meter, threshold)
);

-- +goose Down
DROP TABLE usage_alerts;
