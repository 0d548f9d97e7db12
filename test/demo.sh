#!/usr/bin/env bash
# test/demo.sh: show emissions at work in a throwaway cluster.
#
# Installs what is missing, builds and installs the extension, starts a
# cluster with the library preloaded, creates the database "demo" with the
# extension in it, starts the consumer tool (emissions_consume: LISTEN on
# the channel "emissions", one JSON envelope per line), and runs
# test/demo.sql through psql, echoing each query before its result; then
# shows what the consumer printed.  The cluster is stopped and removed at
# the end.  PG_MAJOR=N runs it on PostgreSQL N (default 15), in
# test/pgenv.sh's environment for N when this machine has no such server.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"

echo "# building and installing"
install_missing
build_install
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16"
export PGDATABASE=demo
psql -X -q -d postgres -c 'CREATE DATABASE demo'
psql -X -a -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'

# The consumer: everything from the first event on, until it has printed
# the two events the demo commits (or 30 seconds pass).
timeout 30 "$PGBIN/emissions_consume" -d demo --after 0 --count 2 \
	>"$CLUSTER/consumer.out" 2>"$CLUSTER/consumer.err" &
consumer=$!

psql -X -a -v ON_ERROR_STOP=1 -f "$top/test/demo.sql"
wait "$consumer" || cat "$CLUSTER/consumer.err" >&2
echo
echo "-- What emissions_consume printed (one event per line):"
cat "$CLUSTER/consumer.out"
cluster_stop "$CLUSTER"
