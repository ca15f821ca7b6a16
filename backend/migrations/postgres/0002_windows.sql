-- Maintenance windows, drain deadlines and read-only mode (SPEC §10): the
-- same columns and table as SQLite's migration 0008.

ALTER TABLE maintenance_history ADD COLUMN event text NOT NULL DEFAULT '';
UPDATE maintenance_history SET event = CASE to_status
    WHEN 'activating' THEN 'activate' WHEN 'activated' THEN 'activated' ELSE 'deactivated' END;
ALTER TABLE maintenance_history ADD COLUMN window_id text;
ALTER TABLE maintenance_history ADD COLUMN detail text NOT NULL DEFAULT '';

ALTER TABLE maintenance ADD COLUMN mode text NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'read_only'));
ALTER TABLE maintenance ADD COLUMN drain_deadline_at text;
ALTER TABLE maintenance ADD COLUMN drain_stage integer NOT NULL DEFAULT 0 CHECK (drain_stage BETWEEN 0 AND 2);
ALTER TABLE maintenance ADD COLUMN drain_force_at text;
ALTER TABLE maintenance ADD COLUMN window_id text;
ALTER TABLE maintenance ADD COLUMN upcoming_id text;

CREATE TABLE windows (
    seq                    bigserial PRIMARY KEY,
    id                     text COLLATE "C" NOT NULL UNIQUE,
    state                  text NOT NULL CHECK (state IN ('scheduled', 'active', 'ended', 'cancelled', 'missed')),
    starts_at              text COLLATE "C" NOT NULL,
    ends_at                text COLLATE "C",
    reason                 text NOT NULL DEFAULT '',
    notice_seconds         bigint NOT NULL CHECK (notice_seconds >= 0),
    drain_deadline_seconds bigint CHECK (drain_deadline_seconds > 0),
    mode                   text NOT NULL CHECK (mode IN ('full', 'read_only')),
    created_by             text NOT NULL,
    created_at             text NOT NULL,
    ended_at               text
);
CREATE INDEX windows_by_state ON windows (state, starts_at);
CREATE INDEX windows_by_start ON windows (starts_at);
