-- Two live processes with one replica id (SPEC §8): each process is an
-- instance of its replica, and its heartbeat renews the lease only while the
-- row is its own or the other's lease ran out. The heartbeat connection's
-- backend tells whether the holder is still connected.
ALTER TABLE replicas ADD COLUMN instance text NOT NULL DEFAULT '';
ALTER TABLE replicas ADD COLUMN backend_pid integer;
