-- SPEC §12: an execution shows the replica that runs it (on SQLite the one
-- process, `local`, once it started). Additive: older rows read as "".
ALTER TABLE executions ADD COLUMN replica TEXT;
