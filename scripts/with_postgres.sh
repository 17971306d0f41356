#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: started in a temporary directory as a
# non-root user, on a free loopback port, and stopped (and deleted) whatever the command's result.
# The command sees LABELLOOP_TEST_DATABASE_URL pointing at an empty database.
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ]; then
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql (make test installs them)" >&2
  exit 1
fi
PGDIR=$(mktemp -d /tmp/labelloop-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$(id -u)" = 0 ]; then
  chown postgres "$PGDIR"
  as_pg() { su postgres -s /bin/sh -c "$1"; }
else
  as_pg() { sh -c "$1"; }
fi
stop() {
  as_pg "$PGBIN/pg_ctl -D $PGDIR/data -m immediate stop >/dev/null 2>&1" || true
  rm -rf "$PGDIR"
}
trap stop EXIT
# Durability settings are off: this cluster lives for one test run.
as_pg "$PGBIN/initdb -D $PGDIR/data -A trust -U postgres >/dev/null &&
  $PGBIN/pg_ctl -D $PGDIR/data -l $PGDIR/log -w start \
    -o '-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200' >/dev/null"
psql -q -h 127.0.0.1 -p "$PORT" -U postgres -c 'create database labelloop_test' >/dev/null
export LABELLOOP_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/labelloop_test"
"$@"
