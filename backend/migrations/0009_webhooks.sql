-- Webhooks (SPEC §11). The history is the outbox: every row written from now
-- on keeps, in its change's transaction, the status object right after its
-- event and its window (JSON), which its webhook body reports.
ALTER TABLE maintenance_history ADD COLUMN status_after TEXT;
ALTER TABLE maintenance_history ADD COLUMN window_after TEXT;

-- Each configured URL's cursor: the last event delivered or given up, and
-- the failed attempts at the next one. `owner` is the replica delivering
-- (PostgreSQL; always NULL here). A new URL starts after the newest event.
CREATE TABLE webhooks (
    url             TEXT PRIMARY KEY,
    delivered_seq   INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    owner           TEXT,
    delivered       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0
);

-- The last deliveries and failures of each URL (the newest 100 are kept).
CREATE TABLE webhook_deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    event_seq   INTEGER NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    at          TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT NOT NULL DEFAULT '',
    latency_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_url ON webhook_deliveries (url, seq);
