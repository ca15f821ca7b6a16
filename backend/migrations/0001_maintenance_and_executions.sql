-- The maintenance gate's state: exactly one row.
CREATE TABLE maintenance (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    status                  TEXT NOT NULL CHECK (status IN ('deactivated', 'activating', 'activated')),
    requested_by            TEXT NOT NULL DEFAULT '',
    activation_requested_at TEXT,
    activated_at            TEXT,
    reason                  TEXT NOT NULL DEFAULT ''
);
INSERT INTO maintenance (id, status) VALUES (1, 'deactivated');

-- Every state transition, oldest first.
CREATE TABLE maintenance_history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT ''
);

-- Executions; seq is the creation order (queued ones start in it).
CREATE TABLE executions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    workflow_id   TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    ended_at      TEXT,
    created_by    TEXT NOT NULL,
    error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX executions_by_status ON executions (status);
