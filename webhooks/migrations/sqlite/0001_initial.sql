-- The first schema of `SqliteStore`. Applied once, in a transaction, by `SqliteStore::open`,
-- which then sets `PRAGMA user_version = 1`. Never edit a released migration: add the next one.
--
-- Conventions: ids are 16-byte UUID BLOBs (they sort like the ids: oldest first); times are
-- INTEGER unix milliseconds; lists and maps are JSON text.

CREATE TABLE subscriptions (
    id                    BLOB PRIMARY KEY NOT NULL,
    url                   TEXT NOT NULL,
    -- JSON array of event patterns, as given.
    events                TEXT NOT NULL,
    -- JSON object of label names to values, in insertion order.
    labels                TEXT NOT NULL,
    -- JSON array of [secret text, expiry or null], current secret first.
    secrets               TEXT NOT NULL,
    -- JSON array of [name, value].
    headers               TEXT NOT NULL,
    ordered               INTEGER NOT NULL,
    rate_limit            INTEGER,
    max_in_flight         INTEGER,
    -- RetryPolicy's stored JSON form; NULL: the runtime's policy.
    retry                 TEXT,
    description           TEXT,
    created_at            INTEGER NOT NULL,
    disabled_at           INTEGER,
    -- manual | gone | failing_since | consecutive_exhausted
    disabled_reason       TEXT,
    -- failing_since: since when (ms); consecutive_exhausted: how many.
    disabled_detail       INTEGER,
    -- Health, kept by record_attempt.
    failing_since         INTEGER,
    consecutive_exhausted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    -- Send order: what ordered subscriptions follow.
    seq        INTEGER PRIMARY KEY,
    id         BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    labels     TEXT NOT NULL,
    body       BLOB NOT NULL
);

-- Retention finds old messages by age.
CREATE INDEX messages_created_at ON messages (created_at);

CREATE TABLE deliveries (
    pk              INTEGER PRIMARY KEY,
    id              BLOB NOT NULL UNIQUE,
    -- messages.seq
    message         INTEGER NOT NULL,
    subscription_id BLOB NOT NULL,
    -- The message's time (kept here for the delivery log's index).
    created_at      INTEGER NOT NULL,
    -- pending | delivered | exhausted | skipped. In flight (leased) and failed (retrying) are
    -- pending rows, told apart by `lease` and `attempts`.
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt is due; NULL once finished.
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    -- The claim that holds it, and until when.
    lease           BLOB,
    lease_until     INTEGER
);

-- A subscription's unfinished deliveries in send order (an ordered subscription's head is the
-- first); also every delivery of a subscription, for deleting it.
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, status, message);

-- What a claim takes for an unordered subscription: unleased, unfinished, by due time.
CREATE INDEX deliveries_ready ON deliveries (subscription_id, next_attempt_at, message)
    WHERE status = 'pending' AND lease IS NULL;

-- Leases, by when they lapse.
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE lease IS NOT NULL;

-- The deliveries of a message.
CREATE INDEX deliveries_message ON deliveries (message);

-- The delivery log, newest first, a page at a time.
CREATE INDEX deliveries_log ON deliveries (created_at, id);

CREATE TABLE attempts (
    -- Insertion order: attempts are listed first first.
    pk              INTEGER PRIMARY KEY,
    -- deliveries.pk
    delivery        INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    latency_ns      INTEGER NOT NULL,
    status_code     INTEGER,
    -- AttemptErrorKind's name.
    error           TEXT,
    error_message   TEXT,
    response_body   BLOB NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery);
