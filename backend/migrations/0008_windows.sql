-- Maintenance windows, drain deadlines and read-only mode (SPEC §10).

-- What each history row records: a transition, a drain step, a window's event.
ALTER TABLE maintenance_history ADD COLUMN event TEXT NOT NULL DEFAULT '';
UPDATE maintenance_history SET event = CASE to_status
    WHEN 'activating' THEN 'activate' WHEN 'activated' THEN 'activated' ELSE 'deactivated' END;
ALTER TABLE maintenance_history ADD COLUMN window_id TEXT;
ALTER TABLE maintenance_history ADD COLUMN detail TEXT NOT NULL DEFAULT '';

ALTER TABLE maintenance ADD COLUMN mode TEXT NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'read_only'));
-- When `activating` gives up waiting: the remaining executions are cancelled.
ALTER TABLE maintenance ADD COLUMN drain_deadline_at TEXT;
-- 0: the deadline is to come; 1: cancelled, force-cancel due at drain_force_at; 2: force-cancelled.
ALTER TABLE maintenance ADD COLUMN drain_stage INTEGER NOT NULL DEFAULT 0 CHECK (drain_stage BETWEEN 0 AND 2);
ALTER TABLE maintenance ADD COLUMN drain_force_at TEXT;
-- The active window (its end deactivates), and the one the status announces.
ALTER TABLE maintenance ADD COLUMN window_id TEXT;
ALTER TABLE maintenance ADD COLUMN upcoming_id TEXT;

CREATE TABLE windows (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    id                     TEXT NOT NULL UNIQUE,
    state                  TEXT NOT NULL CHECK (state IN ('scheduled', 'active', 'ended', 'cancelled', 'missed')),
    starts_at              TEXT NOT NULL,
    ends_at                TEXT,
    reason                 TEXT NOT NULL DEFAULT '',
    notice_seconds         INTEGER NOT NULL CHECK (notice_seconds >= 0),
    drain_deadline_seconds INTEGER CHECK (drain_deadline_seconds > 0),
    mode                   TEXT NOT NULL CHECK (mode IN ('full', 'read_only')),
    created_by             TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    ended_at               TEXT
);
-- The scheduler reads the windows still to come or running.
CREATE INDEX windows_by_state ON windows (state, starts_at);
CREATE INDEX windows_by_start ON windows (starts_at);

INSERT INTO row_counts (name, n) SELECT 'windows', COUNT(*) FROM windows;
CREATE TRIGGER windows_counted_in AFTER INSERT ON windows
BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'windows'; END;
CREATE TRIGGER windows_counted_out AFTER DELETE ON windows
BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'windows'; END;
