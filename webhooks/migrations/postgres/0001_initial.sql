-- The first schema of `PostgresStore`. Applied once, in a transaction, by `PostgresStore::connect`
-- with `search_path` set to the store's schema, which then records version 1 in
-- `schema_version`. Never edit a released migration: add the next one.
--
-- Conventions: ids are UUIDs (v7: they sort oldest first); times are BIGINT unix milliseconds,
-- as in the SQLite store, so that every comparison is exact; lists and maps are JSON (`json`,
-- not `jsonb`: label order is kept as given).

CREATE TABLE schema_version (
    version integer NOT NULL
);

CREATE TABLE subscriptions (
    id                    uuid PRIMARY KEY,
    url                   text NOT NULL,
    -- Array of event patterns, as given.
    events                json NOT NULL,
    -- Object of label names to values, in insertion order.
    labels                json NOT NULL,
    -- Array of [secret text, expiry or null], current secret first.
    secrets               json NOT NULL,
    -- Array of [name, value].
    headers               json NOT NULL,
    ordered               boolean NOT NULL,
    rate_limit            bigint,
    max_in_flight         bigint,
    -- RetryPolicy's stored form; NULL: the runtime's policy.
    retry                 json,
    description           text,
    created_at            bigint NOT NULL,
    disabled_at           bigint,
    -- manual | gone | failing_since | consecutive_exhausted
    disabled_reason       text,
    -- failing_since: since when (ms); consecutive_exhausted: how many.
    disabled_detail       bigint,
    -- Health, kept by record_attempt.
    failing_since         bigint,
    consecutive_exhausted bigint NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    -- Send (commit) order: what ordered subscriptions follow.
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    event_type text NOT NULL,
    labels     json NOT NULL,
    body       bytea NOT NULL
);

-- Retention finds old messages by age.
CREATE INDEX messages_created_at ON messages (created_at);

CREATE TABLE deliveries (
    pk              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    -- Purging a message deletes its deliveries; deleting a subscription deletes its deliveries.
    message         bigint NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
    subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    -- The message's time (kept here for the delivery log's index).
    created_at      bigint NOT NULL,
    -- In flight (leased) and failed (retrying) are pending rows, told apart by `lease` and
    -- `attempts`.
    status          text NOT NULL
                    CHECK (status IN ('pending', 'delivered', 'exhausted', 'skipped')),
    attempts        bigint NOT NULL DEFAULT 0,
    -- When the next attempt is due; NULL once finished.
    next_attempt_at bigint,
    last_attempt_at bigint,
    -- The claim that holds it, and until when. A lapsed lease stays until the delivery is
    -- claimed again (its holder's late attempt then no longer applies) or recorded.
    lease           uuid,
    lease_until     bigint
);

-- What a claim takes for an unordered subscription: unfinished, by due time. Leased rows are in
-- it too (a lapsed lease is claimable); there are at most as many as requests in flight.
CREATE INDEX deliveries_ready ON deliveries (subscription_id, next_attempt_at, message)
    WHERE status = 'pending';

-- An ordered subscription's head: its oldest unfinished delivery in send order.
CREATE INDEX deliveries_head ON deliveries (subscription_id, message)
    WHERE status = 'pending';

-- Leases: whether a subscription has one that holds, and when the earliest lapses.
CREATE INDEX deliveries_leased ON deliveries (subscription_id, lease_until)
    WHERE lease IS NOT NULL;

-- The deliveries of a message (and purging it). A hash index on purpose: it cannot give rows in
-- message order, so the planner never walks it in that order looking for one subscription's head
-- (with a LIMIT, it otherwise may, reading every delivery of a subscription that has none).
CREATE INDEX deliveries_message ON deliveries USING hash (message);

-- A subscription's delivery log, newest first (and deleting the subscription).
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at, id);

-- The delivery log, newest first, a page at a time.
CREATE INDEX deliveries_log ON deliveries (created_at, id);

CREATE TABLE attempts (
    -- Insertion order: attempts are listed first first.
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery      bigint NOT NULL REFERENCES deliveries (pk) ON DELETE CASCADE,
    number        bigint NOT NULL,
    at            bigint NOT NULL,
    latency_ns    bigint NOT NULL,
    status_code   integer,
    -- AttemptErrorKind's name.
    error         text,
    error_message text,
    response_body bytea NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery);
