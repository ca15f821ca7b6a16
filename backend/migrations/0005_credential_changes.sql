-- A counter that grows whenever credentials stop working or change meaning:
-- a token revoked or deleted, a user removed, a password or role changed.
-- The server watches this one row (also for changes made by `manager users`
-- in another process) and then re-checks the credentials of open event streams.
CREATE TABLE credential_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO credential_changes (id, n) VALUES (1, 0);

CREATE TRIGGER token_revoked AFTER UPDATE OF revoked_at ON tokens
BEGIN UPDATE credential_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER token_deleted AFTER DELETE ON tokens
BEGIN UPDATE credential_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER user_removed AFTER DELETE ON users
BEGIN UPDATE credential_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER user_changed AFTER UPDATE OF password_hash, role ON users
BEGIN UPDATE credential_changes SET n = n + 1 WHERE id = 1; END;
