-- Webhooks (SPEC §11): the same as SQLite's migration 0009. The history is the outbox: every row written from now
-- on keeps, in its change's transaction, the status object right after its
-- event and its window (JSON), which its webhook body reports.
ALTER TABLE maintenance_history ADD COLUMN status_after text;
ALTER TABLE maintenance_history ADD COLUMN window_after text;

-- Each configured URL's cursor: the last event delivered or given up, and
-- the failed attempts at the next one. `owner` is the replica delivering,
-- until `claimed_until` (its deliverer renews the claim while it works on the
-- URL; once it lapses, another replica takes the URL). A new URL starts after
-- the newest event.
CREATE TABLE webhooks (
    url             text COLLATE "C" PRIMARY KEY,
    delivered_seq   bigint NOT NULL,
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at text,
    last_error      text NOT NULL DEFAULT '',
    owner           text,
    claimed_until   timestamptz,
    delivered       bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0
);

-- The last deliveries and failures of each URL (the newest 100 are kept).
CREATE TABLE webhook_deliveries (
    seq         bigserial PRIMARY KEY,
    url         text NOT NULL,
    event_seq   bigint NOT NULL,
    event       text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    at          text NOT NULL,
    attempts    bigint NOT NULL,
    status_code bigint,
    error       text NOT NULL DEFAULT '',
    latency_ms  bigint NOT NULL
);
CREATE INDEX webhook_deliveries_by_url ON webhook_deliveries (url, seq);
