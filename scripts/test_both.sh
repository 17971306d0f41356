#!/usr/bin/env bash
# The whole suite on both databases at once: the SQLite pass in the foreground, the PostgreSQL pass
# beside it with its output held back and printed when it ends. Each pass spends much of its time
# waiting on servers, workers and the browser it starts, so on 2 cores the two together take little
# more than the longer one alone. Fails when either pass fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p test-artifacts
PG_LOG=test-artifacts/postgres-pass.log
scripts/with_postgres.sh "$PYTHON" -m pytest -m "not engine" -p no:cacheprovider >"$PG_LOG" 2>&1 &
PG_PID=$!
echo "== PostgreSQL pass started in the background (output in $PG_LOG, printed when it ends)"
echo "== SQLite pass"
"$PYTHON" -m pytest -p no:cacheprovider
SQLITE_RC=$?
wait "$PG_PID"
PG_RC=$?
echo "== PostgreSQL pass"
cat "$PG_LOG"
echo "== SQLite pass exit $SQLITE_RC, PostgreSQL pass exit $PG_RC"
[ "$SQLITE_RC" = 0 ] && [ "$PG_RC" = 0 ]
