-- 0001_init: the event log, documents addressed by (kind, key), and counters.
-- Runs inside the store's own transaction: no BEGIN or COMMIT here.

-- The change timeline. Rows are only ever appended; AUTOINCREMENT keeps ids
-- increasing and never reused, so "after=ID" can follow the log.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    service TEXT,
    "release" TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_time ON events (time_ms);
CREATE INDEX events_service_time ON events (service, time_ms);

-- Durable state of the parts above the store (releases, weights, tokens, ...),
-- one JSON text per (kind, key).
CREATE TABLE docs (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    json TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Named sequences: store_next_id hands out 1, 2, 3, ... per name.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
