-- The whole schema of SQLite's migrations 0001–0007 as one PostgreSQL schema,
-- plus what several replicas need (SPEC §8): the replicas table, each
-- execution's owner, and the database clock as our timestamp text.
--
-- Timestamps are the same RFC 3339 text (UTC, milliseconds, `Z`) as in
-- SQLite, so one parser reads both stores and text order is time order; the
-- database clock writes them (manager_now()), never a replica's clock.
-- Parameters stay text: jsonb would reorder their keys.

CREATE FUNCTION manager_now() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE TABLE maintenance (
    id                      integer PRIMARY KEY CHECK (id = 1),
    status                  text NOT NULL CHECK (status IN ('deactivated', 'activating', 'activated')),
    requested_by            text NOT NULL DEFAULT '',
    activation_requested_at text,
    activated_at            text,
    reason                  text NOT NULL DEFAULT '',
    -- The number of the last change of the status object, cluster-wide.
    epoch                   bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0)
);
INSERT INTO maintenance (id, status) VALUES (1, 'deactivated');

CREATE TABLE maintenance_history (
    seq          bigserial PRIMARY KEY,
    at           text NOT NULL,
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    requested_by text NOT NULL,
    reason       text NOT NULL DEFAULT ''
);

CREATE TABLE executions (
    seq           bigserial PRIMARY KEY,
    -- Sorted as SQLite sorts text (byte order), whatever the database's collation.
    id            text COLLATE "C" NOT NULL UNIQUE,
    workflow_id   text COLLATE "C" NOT NULL,
    deployment_id text COLLATE "C" NOT NULL,
    status        text COLLATE "C" NOT NULL,
    parameters    text NOT NULL,
    created_at    text NOT NULL,
    started_at    text,
    ended_at      text,
    created_by    text COLLATE "C" NOT NULL,
    error         text NOT NULL DEFAULT '',
    -- The replica running it (NULL: not running, e.g. queued).
    owner         text,
    pgid          integer,
    process_start bigint
);
CREATE INDEX executions_by_status ON executions (status);
CREATE INDEX executions_by_deployment ON executions (deployment_id, seq);
CREATE INDEX executions_by_owner ON executions (owner) WHERE owner IS NOT NULL;

CREATE TABLE execution_events (
    execution_id text   NOT NULL,
    seq          bigint NOT NULL CHECK (seq >= 0),
    at           text   NOT NULL,
    stream       text   NOT NULL CHECK (stream IN ('stdout', 'stderr', 'manager')),
    line         text   NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE users (
    username      text PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    password_hash text NOT NULL,
    created_at    text NOT NULL
);

CREATE TABLE tokens (
    id           text PRIMARY KEY,
    digest       text NOT NULL UNIQUE,
    username     text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at   text NOT NULL,
    expires_at   text NOT NULL,
    revoked_at   text
);
CREATE INDEX tokens_by_username ON tokens (username);

-- Grows whenever a credential stops working as it did (open event streams
-- on every replica re-check theirs when it moves).
CREATE TABLE credential_changes (
    id integer PRIMARY KEY CHECK (id = 1),
    n  bigint NOT NULL
);
INSERT INTO credential_changes (id, n) VALUES (1, 0);
CREATE FUNCTION count_credential_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credential_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER token_revoked AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW EXECUTE FUNCTION count_credential_change();
CREATE TRIGGER token_deleted AFTER DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION count_credential_change();
CREATE TRIGGER user_removed AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION count_credential_change();
CREATE TRIGGER user_changed AFTER UPDATE OF password_hash, role ON users
    FOR EACH ROW EXECUTE FUNCTION count_credential_change();

-- The replicas (SPEC §8): each renews its lease by heartbeat; a replica whose
-- lease ran out is dead, and a survivor fails its executions.
CREATE TABLE replicas (
    id         text PRIMARY KEY,
    address    text NOT NULL,
    started_at text NOT NULL,
    last_seen  timestamptz NOT NULL,
    -- The last status change this replica applied.
    epoch      bigint NOT NULL DEFAULT 0,
    -- Its --lease-seconds, in milliseconds: it is dead once last_seen is older.
    lease_ms   bigint NOT NULL DEFAULT 10000
);
