#!/usr/bin/env bash
# Makes sure a second PostgreSQL cluster, `restart`, answers on 127.0.0.1:5433 with trust auth
# and a `test` database, and prints the URL the restart test should use. That test restarts this
# cluster (`pg_ctlcluster --skip-systemctl-redirect VERSION restart restart`), which would break
# every other test on the shared server of postgres.sh. Run postgres.sh first: it installs the
# server. Creates the cluster if missing; with it running already, only prints the URL. Logs go
# to stderr, the URL alone to stdout.
set -euo pipefail

cluster=restart
port=5433

ready() { pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; }

if ! ready; then
    version=$(ls /etc/postgresql 2>/dev/null | head -n 1 || true)
    if [ -z "$version" ]; then
        echo "postgres-restartable: no PostgreSQL on this machine; run .ci/postgres.sh first" >&2
        exit 1
    fi
    if [ ! -d "/etc/postgresql/$version/$cluster" ]; then
        echo "postgres-restartable: creating cluster $version/$cluster on port $port" >&2
        # Started by this script only, never at boot.
        pg_createcluster --port "$port" --start-conf manual "$version" "$cluster" >&2
    fi
    # Loopback only, trust auth: a throwaway server for tests. Written before every start, so
    # that a cluster left half set up by an interrupted run is fixed too. (Not with
    # `pg_createcluster -o`: it writes 127.0.0.1 unquoted, taking it for a number.)
    echo "listen_addresses = '127.0.0.1'" > "/etc/postgresql/$version/$cluster/conf.d/listen.conf"
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
        > "/etc/postgresql/$version/$cluster/pg_hba.conf"
    echo "postgres-restartable: starting cluster $version/$cluster" >&2
    # Fails too when the server runs already (and is only not ready yet): then wait for it.
    if ! pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 &&
        ! pg_ctlcluster "$version" "$cluster" status >/dev/null 2>&1; then
        echo "postgres-restartable: the cluster did not start; its log:" >&2
        tail -n 30 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 || true
        exit 1
    fi
    for _ in $(seq 1 60); do
        ready && break
        sleep 0.5 # waiting for a server process we do not control; bounded to 30 s
    done
    if ! ready; then
        echo "postgres-restartable: the cluster did not come up; its log:" >&2
        tail -n 30 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 || true
        exit 1
    fi
fi

if ! psql -h 127.0.0.1 -p "$port" -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'create database test' >&2
fi
echo "postgres://postgres@127.0.0.1:$port/test"
