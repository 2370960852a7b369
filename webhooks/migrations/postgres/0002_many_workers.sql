-- Version 2: what a subscription promises holds with many worker processes on one database.
-- Applied as 0001 is (one transaction, `search_path` set to the store's schema). Never edit a
-- released migration: add the next one.

-- The version of the whole set of subscriptions: every change to a subscription increments it
-- (an UPDATE, so changes take its row lock one at a time), and an enqueue locks it FOR SHARE
-- and compares it with the version its deliveries were matched against. So a change waits for
-- the enqueues under way and the other way round: no delivery is added to a subscription as it
-- is disabled, and a send is never matched against a set older than a change that returned.
CREATE TABLE subscriptions_version (
    version bigint NOT NULL
);

-- One row, always.
CREATE UNIQUE INDEX subscriptions_version_one ON subscriptions_version ((true));
INSERT INTO subscriptions_version (version) VALUES (0);

-- A message's ordering key: an ordered subscription delivers the messages of one key in send
-- order, different keys in parallel; NULL: the messages without a key, one queue.
ALTER TABLE messages ADD COLUMN ordering_key text;

-- The message's key, copied at enqueue so that a claim finds the heads of an ordered
-- subscription's keys, and the leases a key holds, without reading the messages.
ALTER TABLE deliveries ADD COLUMN ordering_key text;

-- Requeued by hand (redeliver, recover) and not attempted since: shown as pending, not failed.
ALTER TABLE deliveries ADD COLUMN requeued boolean NOT NULL DEFAULT false;

-- What claims keep per subscription: the next free send slot of a rate-limited one, in unix
-- microseconds (0: none given yet). Written only by claims, which hold the subscription's
-- claim lock; a row of its own, so that claims never contend with the health that recorded
-- attempts write to `subscriptions`.
CREATE TABLE subscription_flow (
    subscription_id uuid PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    next_slot_us    bigint NOT NULL DEFAULT 0
);

INSERT INTO subscription_flow (subscription_id) SELECT id FROM subscriptions;

-- Idempotency keys: the first message stored with each, and when (the message's time). A key
-- older than the window is taken anew; retention deletes the old ones.
CREATE TABLE idempotency_keys (
    key        text PRIMARY KEY,
    message_id uuid NOT NULL,
    created_at bigint NOT NULL
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- Leases left on finished deliveries: a delivery skipped while in flight keeps its lease until
-- its attempt is recorded, and if its worker died, claims drop the lease once it lapses (as
-- they do a pending delivery's, by leasing it again). Usually empty.
CREATE INDEX deliveries_stale_leases ON deliveries (lease_until)
    WHERE lease IS NOT NULL AND status <> 'pending';

-- Otherwise no new index for claims: an ordered subscription's window is read in send order
-- from `deliveries_head`, and the leases of its keys from `deliveries_leased` (a subscription
-- holds at most its `max_in_flight` of them).
