#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth and a `test`
# database, and prints the URL the tests should use. Installs the server if the machine has none.
set -euo pipefail

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! ready; then
    if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        echo "postgres: no server on this machine; installing Debian's" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        version=$(ls /etc/postgresql | head -n 1)
        # Loopback only, trust auth: a throwaway server for tests.
        printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
            > "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    echo "postgres: starting the server" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >&2 || true
    for _ in $(seq 1 60); do
        ready && break
        sleep 0.5 # waiting for a server process we do not control; bounded to 30 s
    done
    ready || { echo "postgres: the server did not come up" >&2; exit 1; }
fi

if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >&2
fi
echo "postgres://postgres@127.0.0.1:5432/test"
