-- How many rows the paged tables hold, kept by triggers in the same
-- transaction as each insert or delete: a page's total is then one lookup,
-- not a COUNT(*) scan that grows with every execution ever stored.
CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL CHECK (n >= 0)
) WITHOUT ROWID;
INSERT INTO row_counts (name, n) SELECT 'executions', COUNT(*) FROM executions;
INSERT INTO row_counts (name, n) SELECT 'maintenance_history', COUNT(*) FROM maintenance_history;

CREATE TRIGGER executions_counted_in AFTER INSERT ON executions
BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'executions'; END;
CREATE TRIGGER executions_counted_out AFTER DELETE ON executions
BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'executions'; END;
CREATE TRIGGER maintenance_history_counted_in AFTER INSERT ON maintenance_history
BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'maintenance_history'; END;
CREATE TRIGGER maintenance_history_counted_out AFTER DELETE ON maintenance_history
BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'maintenance_history'; END;
