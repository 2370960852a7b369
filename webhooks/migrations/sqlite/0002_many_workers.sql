-- The store contract for many workers: a version of the subscriptions, ordering keys,
-- idempotency keys, and the per-subscription limits the claim enforces. Applied once, in a
-- transaction, by `SqliteStore::open`, which then sets `PRAGMA user_version = 2`.

-- The version of the subscriptions: one row, one more with every change to a subscription (in
-- the change's transaction). An enqueue matched against another version stores nothing.
CREATE TABLE subscriptions_version (
    version INTEGER NOT NULL
);
INSERT INTO subscriptions_version (version) VALUES (0);

-- A rate-limited subscription's next free send slot, in unix microseconds (0: none given yet).
ALTER TABLE subscriptions ADD COLUMN next_slot_us INTEGER NOT NULL DEFAULT 0;

-- The message's ordering key; NULL: none (such messages share one queue).
ALTER TABLE messages ADD COLUMN ordering_key TEXT;

-- The same, kept with each of its deliveries, for the claim of an ordered subscription: which
-- of its unfinished deliveries head their key is read from them alone.
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;

-- Whether an ordered subscription has unfinished deliveries with a key: without, its claim
-- looks at its oldest one only.
CREATE INDEX deliveries_keyed ON deliveries (subscription_id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;

-- Requeued by hand (redeliver, recover) and not attempted since: shown as pending.
ALTER TABLE deliveries ADD COLUMN requeued INTEGER NOT NULL DEFAULT 0;

-- A subscription's leases, counted by the claim against its `max_in_flight`.
CREATE INDEX deliveries_leased_by_subscription ON deliveries (subscription_id)
    WHERE lease IS NOT NULL;

-- Idempotency keys: the message first stored with each, and when (its creation time, ms).
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Retention forgets old keys.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
