-- Version 3: less work for the server per delivery. Applied as 0001 and 0002 are (one
-- transaction, `search_path` set to the store's schema). Never edit a released migration: add
-- the next one.

-- No foreign keys on the rows written per delivery: each was checked by a query of its own
-- (a row lock on the message, the subscription, the delivery) for every delivery and attempt
-- inserted, a seventh of the server's time. What they kept is kept otherwise:
-- - a delivery's subscription exists: enqueues insert only deliveries matched against the
--   current subscriptions' version, which every change (a delete too) increments while it
--   holds the version row, and which enqueues hold `FOR SHARE` (see 0002);
-- - a delivery's message exists: both go in in one statement; `purge` deletes a message's
--   deliveries and their attempts with it;
-- - an attempt's delivery exists: it is found by the statement that inserts the attempt;
--   deleting a subscription deletes its deliveries and their attempts in its statement.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_message_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_subscription_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_fkey;

-- A claim, in one statement from the client (one round trip, committed on its own without
-- waiting for the WAL flush), with what used to be its two statements inside: a VOLATILE
-- function takes a fresh snapshot for each statement, so the second one, as before, counts
-- and leases with a snapshot taken after the first took the subscriptions' claim locks.
--
-- The first statement locks the subscriptions that may give deliveries, in turn order, and
-- reads the subscriptions' version. While a claim holds a subscription's lock no other claim
-- leases its deliveries or gives its send slots; what it reads is a guess, made only to lock
-- subscriptions that have work and room (and not more than the claim may use). The lock is a
-- transaction-scoped advisory lock, tried without waiting (one another claim holds is
-- skipped); not a lock on its row: recording an attempt updates that row (health) while
-- holding the delivery's, and a claim waiting for that delivery while holding the row would
-- deadlock with it. It also drops the lapsed leases left on finished deliveries (skipped while
-- in flight, their worker gone), skipping rows others hold.
--
-- The second, for the subscriptions locked: per subscription its room is its `max_in_flight`
-- (or the default) less the leases that hold, any status; a rate-limited one's is also capped
-- by its send slots, `1/rate` apart (µs, rounded up) from its next free slot or now, none past
-- the horizon. Subscriptions take turns (after the one served last). An unordered subscription
-- gives its due, unleased (or lapsed) deliveries, oldest due first. An ordered one gives the
-- heads of its keys among its `p_window` oldest pending deliveries, each if due and not leased
-- and if no delivery of its key holds a lease. Rows are locked skipping those another
-- transaction holds; the UPDATE checks the state again. The slots are given in order to what
-- was leased, and the next free one written back.
--
-- One row per claimed delivery: the delivery's view (11 columns), lease, labels, body,
-- ordering key, subscription, turn, place in its subscription's picks, send slot (µs), and the
-- version; when nothing is claimed, one row of NULLs but the version.
CREATE FUNCTION claim_deliveries(
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
-- Index lookups, whatever the statistics say. The plans are cached (as a prepared statement's
-- are), and made while the tables were small, sweeping lapsed leases hashed two sequential
-- scans of `deliveries` at every claim long after it had grown. Every join here is a few rows
-- against an index. No bitmap scans either: they never mark the index entries of dead row
-- versions dead, and every claim and record leaves one in `deliveries_leased` and
-- `deliveries_ready` (no update of a delivery is HOT), so counting a subscription's leases
-- would visit every lease given within the last lease period, at every claim, until vacuum; a
-- plain index scan marks them on its way, once.
-- And no JIT: a plan with a disabled path (the one-row version table has only a sequential
-- scan) costs more than JIT's threshold, and compiling it would take longer than the claim.
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

    WITH swept AS (
        UPDATE deliveries d SET lease = NULL, lease_until = NULL
        FROM (SELECT l.pk FROM deliveries l
              WHERE l.lease IS NOT NULL AND l.status <> 'pending' AND l.lease_until <= p_now
              FOR UPDATE SKIP LOCKED) stale
        WHERE d.pk = stale.pk
    )
    SELECT (SELECT sv.version FROM subscriptions_version sv), ARRAY(
        SELECT c.id FROM (
            SELECT s.id FROM subscriptions s
            LEFT JOIN subscription_flow f ON f.subscription_id = s.id
            WHERE s.disabled_at IS NULL AND s.id <> ALL(p_exclude)
              AND EXISTS (SELECT 1 FROM deliveries d
                          WHERE d.subscription_id = s.id AND d.status = 'pending'
                            AND d.next_attempt_at <= p_now
                            AND (d.lease IS NULL OR d.lease_until <= p_now))
              AND (SELECT count(*) FROM deliveries l
                   WHERE l.subscription_id = s.id AND l.lease IS NOT NULL
                     AND l.lease_until > p_now)
                  < GREATEST(COALESCE(s.max_in_flight, p_default), 1)
              AND (s.rate_limit IS NULL OR COALESCE(f.next_slot_us, 0) <= p_horizon_us)
            ORDER BY COALESCE(s.id <= p_after, false), s.id
        ) c
        -- Evaluated row by row in turn order (a volatile condition is not pushed into the
        -- sorted subquery), until enough are locked.
        WHERE pg_try_advisory_xact_lock(
            hashtextextended('webhooks claim ' || p_schema || ' ' || c.id::text, 0))
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
                    - (SELECT count(*) FROM deliveries l
                       WHERE l.subscription_id = s.id AND l.lease IS NOT NULL
                         AND l.lease_until > p_now) AS room,
                CASE WHEN s.rate_limit IS NOT NULL
                    THEN (1000000 + GREATEST(s.rate_limit, 1) - 1) / GREATEST(s.rate_limit, 1)
                END AS interval_us,
                GREATEST(COALESCE(f.next_slot_us, 0), p_now_us) AS first_us
            FROM subscriptions s
            LEFT JOIN subscription_flow f ON f.subscription_id = s.id
            WHERE s.id = ANY(v_locked) AND s.disabled_at IS NULL
        ) x
    ), heads AS (
        SELECT subs.id AS sub, subs.turn, h.pk, subs.room,
            row_number() OVER (PARTITION BY subs.id ORDER BY h.message) AS nth
        FROM subs CROSS JOIN LATERAL (
            SELECT DISTINCT ON (w.ordering_key) w.*
            FROM (
                SELECT d.pk, d.message, d.ordering_key, d.next_attempt_at, d.lease,
                    d.lease_until
                FROM deliveries d
                WHERE d.subscription_id = subs.id AND d.status = 'pending'
                  AND subs.ordered AND subs.room > 0
                ORDER BY d.message
                LIMIT p_window
            ) w
            ORDER BY w.ordering_key, w.message
        ) h
        WHERE h.next_attempt_at <= p_now AND (h.lease IS NULL OR h.lease_until <= p_now)
          AND NOT EXISTS (SELECT 1 FROM deliveries l
                          WHERE l.subscription_id = subs.id AND l.lease IS NOT NULL
                            AND l.lease_until > p_now
                            AND l.ordering_key IS NOT DISTINCT FROM h.ordering_key)
    ), ready AS (
        SELECT subs.id AS sub, subs.turn, r.pk,
            row_number() OVER (PARTITION BY subs.id ORDER BY r.next_attempt_at, r.message)
                AS nth
        FROM subs CROSS JOIN LATERAL (
            SELECT d.pk, d.next_attempt_at, d.message FROM deliveries d
            WHERE d.subscription_id = subs.id AND d.status = 'pending' AND NOT subs.ordered
              AND d.next_attempt_at <= p_now AND (d.lease IS NULL OR d.lease_until <= p_now)
            ORDER BY d.next_attempt_at, d.message
            LIMIT subs.room
            FOR UPDATE SKIP LOCKED
        ) r
    ), head_rows AS (
        SELECT heads.sub, heads.turn, heads.pk, heads.nth
        FROM heads JOIN deliveries d ON d.pk = heads.pk
        WHERE heads.nth <= heads.room
        FOR UPDATE OF d SKIP LOCKED
    ), picked AS (
        SELECT p.sub, p.turn, p.pk, p.nth FROM head_rows p
        UNION ALL
        SELECT r.sub, r.turn, r.pk, r.nth FROM ready r
        ORDER BY 2, 4
        LIMIT p_limit
    ), claimed AS (
        UPDATE deliveries d SET lease = gen_random_uuid(), lease_until = p_lease_until
        FROM picked, messages m
        WHERE d.pk = picked.pk AND m.seq = d.message
          AND d.status = 'pending' AND (d.lease IS NULL OR d.lease_until <= p_now)
        RETURNING d.id, m.id AS message_id, d.subscription_id, m.event_type, d.status,
            d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at,
            d.lease IS NOT NULL AS in_flight, d.requeued, d.lease, m.labels::text AS labels,
            m.body, m.ordering_key, picked.sub, picked.turn, picked.nth
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
