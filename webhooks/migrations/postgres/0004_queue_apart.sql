-- Version 4: the queue apart from the log. Applied as 0001-0003 are (one transaction,
-- `search_path` set to the store's schema). Never edit a released migration: add the next one.
--
-- Until version 3 a delivery's row was its queue entry, its lease and its log entry at once:
-- every claim and every recorded attempt wrote a new version of it into every index of
-- `deliveries` (seven), none of them HOT, and claims then walked the dead versions in the
-- partial indexes they read. With a million rows the server's time per delivery grew fourfold.
-- Now:
-- - `queue`: one narrow row per unfinished (pending) delivery, inserted with the delivery and
--   deleted when it finishes. What claims read. Its `next_attempt_at` is when the delivery may
--   next be claimed: its due time, or while it is leased the lease's end (a claim moves it
--   there, a retry to its next due time), so that claims find the claimable rows first in the
--   index, without stepping over the ones in flight, and a lapsed lease needs no sweep to
--   become claimable.
-- - `leases`: one row per lease, inserted by the claim that gives it and deleted by the
--   attempt it is for (or replaced by a claim once lapsed). Small: at most the requests in
--   flight, and the lapsed leases not yet taken over. What claims count.
-- - `deliveries`: the log, written when enqueued and once per attempt, with no index on what an
--   attempt changes, so those updates are HOT (`fillfactor` leaves room on each page).
--
-- Invariants: a delivery is `pending` in `deliveries` if and only if it has a `queue` row. A
-- lease may outlive its queue row (a delivery skipped while in flight keeps its lease until its
-- attempt is recorded; claims drop such leases once they lapse). Whatever changes a delivery's
-- lease or state locks its `queue` row first (claims `FOR UPDATE SKIP LOCKED`), then its lease,
-- then its `deliveries` row: one order, so they never deadlock on one delivery.

CREATE TABLE queue (
    -- `deliveries.pk`.
    delivery        bigint PRIMARY KEY,
    subscription_id uuid NOT NULL,
    -- The message's seq: send order, what ordered subscriptions follow.
    message         bigint NOT NULL,
    ordering_key    text,
    next_attempt_at bigint NOT NULL
);

-- What a claim takes for an unordered subscription: by the time it may be claimed.
CREATE INDEX queue_ready ON queue (subscription_id, next_attempt_at, message);

-- An ordered subscription's window: its oldest unfinished deliveries in send order.
CREATE INDEX queue_head ON queue (subscription_id, message);

INSERT INTO queue (delivery, subscription_id, message, ordering_key, next_attempt_at)
SELECT pk, subscription_id, message, ordering_key,
    GREATEST(COALESCE(next_attempt_at, created_at), CASE WHEN lease IS NOT NULL THEN lease_until END)
FROM deliveries WHERE status = 'pending';

CREATE TABLE leases (
    -- `deliveries.pk`.
    delivery        bigint PRIMARY KEY,
    subscription_id uuid NOT NULL,
    -- The delivery's ordering key: an ordered subscription's key holds one lease at a time.
    ordering_key    text,
    lease           uuid NOT NULL,
    lease_until     bigint NOT NULL
);

-- A subscription's leases that hold: its room, and its ordered keys in flight.
CREATE INDEX leases_subscription ON leases (subscription_id, lease_until);

-- Lapsed leases, which claims sweep when their delivery has finished.
CREATE INDEX leases_until ON leases (lease_until);

INSERT INTO leases (delivery, subscription_id, ordering_key, lease, lease_until)
SELECT pk, subscription_id, ordering_key, lease, lease_until
FROM deliveries WHERE lease IS NOT NULL;

DROP INDEX deliveries_ready;
DROP INDEX deliveries_head;
DROP INDEX deliveries_leased;
DROP INDEX deliveries_stale_leases;
ALTER TABLE deliveries DROP COLUMN lease, DROP COLUMN lease_until;

-- Room on each page for the one update a finished delivery gets (HOT: no index names a column
-- an attempt writes). New pages only; existing ones fill up as rows come and go.
ALTER TABLE deliveries SET (fillfactor = 80);

-- Churned tables: vacuumed and analyzed after a few thousand changes rather than a fifth of
-- their size, so that claims keep walking live rows.
ALTER TABLE queue SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE leases SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- A claim, as in version 3 (see 0003 for its contract, unchanged), on `queue` and `leases`.
CREATE OR REPLACE FUNCTION claim_deliveries(
    p_exclude uuid[], p_now bigint, p_after uuid, p_default bigint, p_now_us bigint,
    p_horizon_us bigint, p_window bigint, p_limit bigint, p_lease_until bigint, p_schema text)
RETURNS TABLE (
    c_id uuid, c_message_id uuid, c_subscription_id uuid, c_event_type text, c_status text,
    c_attempts bigint, c_next_attempt_at bigint, c_created_at bigint, c_last_attempt_at bigint,
    c_in_flight boolean, c_requeued boolean, c_lease uuid, c_labels text, c_body bytea,
    c_ordering_key text, c_sub uuid, c_turn bigint, c_nth bigint, c_not_before bigint,
    c_version bigint)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
-- Index lookups only and no JIT, as in version 3 (the plans are cached). And one generic plan
-- per statement and connection: with the other settings every plan's cost looks alike, so
-- PostgreSQL kept planning both statements anew at every call (custom plans), which took
-- longer than running them.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $fn$
DECLARE
    v_version bigint;
    v_locked uuid[];
BEGIN
    -- A lease is not worth a WAL flush on the way to every request (see `PostgresStore`).
    PERFORM set_config('synchronous_commit', 'off', true);

    -- Lapsed leases of finished deliveries go (rows others hold are skipped); the
    -- subscriptions with due, unleased work and room are locked in turn order.
    WITH swept AS (
        DELETE FROM leases l
        USING (SELECT x.delivery FROM leases x
               WHERE x.lease_until <= p_now
                 AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.delivery = x.delivery)
               FOR UPDATE SKIP LOCKED) stale
        WHERE l.delivery = stale.delivery
    )
    -- The subscriptions are read in turn order straight from their index (those after the one
    -- served last, then the others), each checked as it comes, so that the LIMIT stops the
    -- reading once enough are locked: sorting them by turn first would check every one of
    -- them at every claim (10,000 subscriptions, 10,000 probes a claim).
    SELECT (SELECT sv.version FROM subscriptions_version sv), ARRAY(
        SELECT ok.id FROM (
            (SELECT s.id FROM subscriptions s
             WHERE (p_after IS NULL OR s.id > p_after)
             ORDER BY s.id)
            UNION ALL
            (SELECT s.id FROM subscriptions s
             WHERE s.id <= p_after
             ORDER BY s.id)
        ) c
        -- The checks, in a subquery of their own (OFFSET 0: kept apart), and the lock taken on
        -- its rows: a volatile condition on `c` alone would run before the checks.
        JOIN LATERAL (
            SELECT s.id FROM subscriptions s
            LEFT JOIN subscription_flow f ON f.subscription_id = s.id
            WHERE s.id = c.id AND s.disabled_at IS NULL AND s.id <> ALL(p_exclude)
              -- One index probe per subscription (a LIMIT keeps it a probe: as EXISTS, the
              -- planner read every claimable row of the queue to find their subscriptions).
              AND (SELECT q.delivery FROM queue q
                   WHERE q.subscription_id = s.id AND q.next_attempt_at <= p_now
                   LIMIT 1) IS NOT NULL
              AND (SELECT count(*) FROM leases l
                   WHERE l.subscription_id = s.id AND l.lease_until > p_now)
                  < GREATEST(COALESCE(s.max_in_flight, p_default), 1)
              AND (s.rate_limit IS NULL OR COALESCE(f.next_slot_us, 0) <= p_horizon_us)
            OFFSET 0
        ) ok ON true
        WHERE pg_try_advisory_xact_lock(
            hashtextextended('webhooks claim ' || p_schema || ' ' || ok.id::text, 0))
        LIMIT p_limit
    )
    INTO v_version, v_locked;

    IF cardinality(v_locked) = 0 THEN
        RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, NULL::text, NULL::text,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean,
            NULL::boolean, NULL::uuid, NULL::text, NULL::bytea, NULL::text, NULL::uuid,
            NULL::bigint, NULL::bigint, NULL::bigint, v_version;
        RETURN;
    END IF;

    RETURN QUERY
    WITH subs AS MATERIALIZED (
        SELECT x.id, x.ordered, x.turn, x.interval_us, x.first_us,
            GREATEST(LEAST(x.room,
                CASE WHEN x.interval_us IS NULL THEN x.room
                     WHEN x.first_us > p_horizon_us THEN 0
                     ELSE (p_horizon_us - x.first_us) / x.interval_us + 1 END), 0) AS room
        FROM (
            SELECT s.id, s.ordered,
                row_number() OVER (ORDER BY COALESCE(s.id <= p_after, false), s.id) AS turn,
                GREATEST(COALESCE(s.max_in_flight, p_default), 1)
                    - (SELECT count(*) FROM leases l
                       WHERE l.subscription_id = s.id AND l.lease_until > p_now) AS room,
                CASE WHEN s.rate_limit IS NOT NULL
                    THEN (1000000 + GREATEST(s.rate_limit, 1) - 1) / GREATEST(s.rate_limit, 1)
                END AS interval_us,
                GREATEST(COALESCE(f.next_slot_us, 0), p_now_us) AS first_us
            FROM subscriptions s
            LEFT JOIN subscription_flow f ON f.subscription_id = s.id
            WHERE s.id = ANY(v_locked) AND s.disabled_at IS NULL
        ) x
    ), heads AS (
        -- The heads of an ordered subscription's keys among its window, each if claimable
        -- (due, and not leased unless the lease lapsed) and if no lease of its key holds.
        SELECT subs.id AS sub, subs.turn, h.delivery, subs.room,
            row_number() OVER (PARTITION BY subs.id ORDER BY h.message) AS nth
        FROM subs CROSS JOIN LATERAL (
            SELECT DISTINCT ON (w.ordering_key) w.*
            FROM (
                SELECT q.delivery, q.message, q.ordering_key, q.next_attempt_at
                FROM queue q
                WHERE q.subscription_id = subs.id AND subs.ordered AND subs.room > 0
                ORDER BY q.message
                LIMIT p_window
            ) w
            ORDER BY w.ordering_key, w.message
        ) h
        WHERE h.next_attempt_at <= p_now
          AND NOT EXISTS (SELECT 1 FROM leases l
                          WHERE l.subscription_id = subs.id AND l.lease_until > p_now
                            AND l.ordering_key IS NOT DISTINCT FROM h.ordering_key)
    ), ready AS (
        SELECT subs.id AS sub, subs.turn, r.delivery,
            row_number() OVER (PARTITION BY subs.id ORDER BY r.next_attempt_at, r.message)
                AS nth
        FROM subs CROSS JOIN LATERAL (
            SELECT q.delivery, q.next_attempt_at, q.message FROM queue q
            WHERE q.subscription_id = subs.id AND NOT subs.ordered
              AND q.next_attempt_at <= p_now
            ORDER BY q.next_attempt_at, q.message
            LIMIT subs.room
            FOR UPDATE SKIP LOCKED
        ) r
    ), head_rows AS (
        SELECT heads.sub, heads.turn, heads.delivery, heads.nth
        FROM heads JOIN queue q ON q.delivery = heads.delivery
        WHERE heads.nth <= heads.room
        FOR UPDATE OF q SKIP LOCKED
    ), picked AS (
        SELECT p.sub, p.turn, p.delivery, p.nth FROM head_rows p
        UNION ALL
        SELECT r.sub, r.turn, r.delivery, r.nth FROM ready r
        ORDER BY 2, 4
        LIMIT p_limit
    ), leased AS (
        -- A lapsed lease is taken over (its holder's late attempt then no longer applies);
        -- one that holds is left alone, and its delivery not claimed.
        INSERT INTO leases AS l (delivery, subscription_id, ordering_key, lease, lease_until)
        SELECT q.delivery, q.subscription_id, q.ordering_key, gen_random_uuid(), p_lease_until
        FROM picked JOIN queue q ON q.delivery = picked.delivery
        ON CONFLICT (delivery) DO UPDATE
            SET lease = EXCLUDED.lease, lease_until = EXCLUDED.lease_until
            WHERE l.lease_until <= p_now
        RETURNING l.delivery, l.lease
    ), moved AS (
        -- Claimable again when the lease lapses, unless an attempt is recorded first.
        UPDATE queue q SET next_attempt_at = p_lease_until
        FROM leased WHERE q.delivery = leased.delivery
    ), claimed AS (
        SELECT d.id, m.id AS message_id, d.subscription_id, m.event_type, d.status,
            d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at,
            true AS in_flight, d.requeued, leased.lease, m.labels::text AS labels,
            m.body, m.ordering_key, picked.sub, picked.turn, picked.nth
        FROM leased
        JOIN picked ON picked.delivery = leased.delivery
        JOIN deliveries d ON d.pk = leased.delivery
        JOIN messages m ON m.seq = d.message
    ), slotted AS (
        SELECT claimed.*, subs.first_us + subs.interval_us
            * (row_number() OVER (PARTITION BY claimed.sub ORDER BY claimed.nth) - 1)
            AS not_before
        FROM claimed JOIN subs ON subs.id = claimed.sub
    ), slots AS (
        UPDATE subscription_flow f
        SET next_slot_us = subs.first_us + subs.interval_us * g.given
        FROM (SELECT claimed.sub, count(*) AS given FROM claimed GROUP BY claimed.sub) g
        JOIN subs ON subs.id = g.sub
        WHERE f.subscription_id = g.sub AND subs.interval_us IS NOT NULL
    )
    SELECT slotted.id, slotted.message_id, slotted.subscription_id, slotted.event_type,
        slotted.status, slotted.attempts, slotted.next_attempt_at, slotted.created_at,
        slotted.last_attempt_at, slotted.in_flight, slotted.requeued, slotted.lease,
        slotted.labels, slotted.body, slotted.ordering_key, slotted.sub, slotted.turn,
        slotted.nth, slotted.not_before, t.version
    FROM (SELECT (SELECT sv.version FROM subscriptions_version sv) AS version) t
    LEFT JOIN slotted ON true;
END
$fn$;
