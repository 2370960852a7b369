-- Fewer index writes per delivery: one index of leases where there were two. Applied once, in a
-- transaction, by `SqliteStore::open`, which then sets `PRAGMA user_version = 3`.
--
-- A delivery is leased by a claim and released when its attempt is recorded: each index of
-- leases takes an insert and a delete per delivery. `deliveries_leased` (by `lease_until`, for
-- the leases that lapse) and `deliveries_leased_by_subscription` (for each subscription's count
-- against its `max_in_flight`) become one index holding both columns. The leases that lapse, and
-- the earliest to, are found by scanning it: it holds only the deliveries in flight.

DROP INDEX deliveries_leased;
DROP INDEX deliveries_leased_by_subscription;

CREATE INDEX deliveries_leased_by_subscription ON deliveries (subscription_id, lease_until)
    WHERE lease IS NOT NULL;
