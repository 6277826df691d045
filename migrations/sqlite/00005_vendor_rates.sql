-- +goose Up
CREATE TABLE vendor_rates (
    tenant_id           TEXT NOT NULL REFERENCES orgs (id),
    currency            TEXT NOT NULL,
    cost_per_seat_hour  INTEGER NOT NULL CHECK (cost_per_seat_hour >= 0),
    hours_per_seat_day  INTEGER NOT NULL DEFAULT 8 CHECK (hours_per_seat_day BETWEEN 1 AND 24),
    updated_at          DATETIME NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- +goose Down
DROP TABLE vendor_rates;
