#!/bin/sh
# `make test`: the whole suite on the file store and, at the same time (two labs of their
# own, on their own loopback ports), the integration suite on a PostgreSQL store. The
# second run's output is shown after the first's; the exit status is the worse of the two.
BIN="$1"
log="$(mktemp "${TMPDIR:-/tmp}/certcli-test-postgres.XXXXXX")"
CERTCLI_TEST_STORE=postgresql "$BIN/pytest" -q -p no:cacheprovider tests/integration >"$log" 2>&1 &
pg=$!
"$BIN/pytest"
files=$?
wait "$pg"
postgres=$?
echo "== the integration suite on a PostgreSQL store (make test-postgres) =="
tail -n 60 "$log"
rm -f "$log"
[ "$files" -eq 0 ] && [ "$postgres" -eq 0 ]
