#!/usr/bin/env bash
# test/demo.sh: show emissions at work in a throwaway cluster.
#
# Installs what is missing, builds and installs the extension, starts a
# cluster with the library preloaded, creates the database "demo" with the
# extension in it, starts a consumer that LISTENs on the channel
# "emissions", and runs test/demo.sql through psql, echoing each query
# before its result; then shows what the consumer received.  The cluster is
# stopped and removed at the end.
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

# A consumer: psql LISTENs, then sleeps; it prints the notifications that
# arrived once its sleep ends.
psql -X -q -c 'LISTEN emissions' -c 'SELECT pg_sleep(3)' \
	>"$CLUSTER/listener.out" 2>&1 &
listener=$!
for _ in $(seq 1 50); do
	[ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity
		WHERE query = 'SELECT pg_sleep(3)'")" = 1 ] && break
	sleep 0.1
done

psql -X -a -v ON_ERROR_STOP=1 -f "$top/test/demo.sql"
wait "$listener"
echo
echo "-- What the LISTEN consumer received:"
grep 'Asynchronous notification' "$CLUSTER/listener.out"
cluster_stop "$CLUSTER"
