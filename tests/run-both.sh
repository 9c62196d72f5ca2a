#!/bin/sh
# `make test`: the whole suite on the file store, then the integration suite on a PostgreSQL
# store (make test-postgres). One after the other: two labs at once contend for the
# loopback's port 53 and for the two cores. The exit status is the worse of the two.
BIN="$1"
"$BIN/pytest"
files=$?
echo "== the integration suite on a PostgreSQL store (make test-postgres) =="
CERTCLI_TEST_STORE=postgresql "$BIN/pytest" tests/integration
postgres=$?
[ "$files" -eq 0 ] && [ "$postgres" -eq 0 ]
