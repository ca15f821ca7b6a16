-- Executions run workflow programs (SPEC §9). The process group of a running
-- execution and its leader's start time (clock ticks since boot), so that
-- start-up after a crash kills exactly that group, never a later process
-- that reused the id.
ALTER TABLE executions ADD COLUMN pgid INTEGER;
ALTER TABLE executions ADD COLUMN process_start INTEGER;

-- Every line a program wrote, numbered from 0 per execution in the order read.
CREATE TABLE execution_events (
    execution_id TEXT    NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    at           TEXT    NOT NULL,
    stream       TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr', 'manager')),
    line         TEXT    NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
