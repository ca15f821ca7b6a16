-- The epoch: the number of the latest published status change. It grows by
-- one per change and never goes back, also across restarts, so a client that
-- holds a newer status can tell an older answer apart (SSE `id:`, header
-- `X-Maintenance-Epoch`).
ALTER TABLE maintenance ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0);
