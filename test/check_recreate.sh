#!/usr/bin/env bash
# test/check_recreate.sh: DROP EXTENSION and CREATE EXTENSION in one
# transaction, under a running delivery worker, start a fresh stream whose
# ids stay stable across a crash (the Stable ids section).
#
# Before the recreate the worker has delivered events and holds, in its
# memory, the old extension's next id, id reservation and log partition.
# After it, the worker must serve the new tables from their own state: the
# new emissions_state gets a reservation above every id handed out, and the
# new stream's ids start afresh.  Then the server is stopped with -m
# immediate right after a delivery (the worker commits without waiting for
# its WAL flush, and wal_writer_delay is long here, so the crash usually
# loses that delivery): the events come back, and every id seen before the
# crash still names the event it named, and any event delivered again gets
# an id above all of them.  Last, DROP EXTENSION and CREATE EXTENSION in
# two transactions, back to back, ten times: each time a worker serves the
# new stream.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16" "wal_writer_delay = '10s'" \
	"wal_writer_flush_after = '64MB'" "bgwriter_lru_maxpages = 0"
export PGDATABASE=postgres
dir="$CLUSTER"

# Run SQL, printing unaligned tuples only (and errors, to fail a check).
q() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

# Emit events n = $1 .. $2 of type $3, one committed transaction each.
emit() {
	local n args=()
	for n in $(seq "$1" "$2"); do
		args+=(-c "BEGIN" -c "SELECT emissions_start(),
			emissions_emit('$3', jsonb_build_object('n', $n))" -c "COMMIT")
	done
	psql -X -q -v ON_ERROR_STOP=1 "${args[@]}" >/dev/null
}

# Wait until everything committed is delivered; print t or f.
drained() {
	psql -X -At -c "SELECT emissions_wait_delivered('30s')" 2>&1 || true
}

q "CREATE EXTENSION emissions" >/dev/null
emit 1 30 rc.before
check_eq "the old stream is delivered" "t" "$(drained)"
check_eq "... as ids 1 to 30" "1|30" \
	"$(q "SELECT min(id), max(id) FROM emissions_events(0, 1000)")"

q "BEGIN; DROP EXTENSION emissions; CREATE EXTENSION emissions; COMMIT" \
	>/dev/null
emit 1 20 rc.after
check_eq "events after the recreate are delivered" "t" "$(drained)"
check_eq "... all of them, none of the old stream" "20|20|0" "$(q "
	SELECT count(*), count(DISTINCT payload->>'n'),
		   count(*) FILTER (WHERE type <> 'rc.after')
	  FROM emissions_events(0, 100000)")"
check_eq "the new stream's ids start afresh" "1" \
	"$(q "SELECT min(id) FROM emissions_events(0, 100000)")"
check_eq "the new emissions_state reserves every id handed out" "t" "$(q "
	SELECT s.reserved_id > 0 AND s.reserved_id >= e.max
	  FROM emissions_state AS s,
		   (SELECT max(id) FROM emissions_events(0, 100000)) AS e")"

# One more delivery, read at once, then a crash before its WAL is flushed.
emit 21 25 rc.after
check_eq "the last events are delivered before the crash" "t" "$(drained)"
q "SELECT id, payload->>'n' FROM emissions_events(0, 100000)" \
	| tr '|' ',' >"$dir/seen.csv"
as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null
as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
check_eq "after the crash every event is delivered again" "t" "$(drained)"

q "CREATE TABLE seen (id bigint, n text)" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c "\\copy seen FROM '$dir/seen.csv' CSV"
comment "$(q "SELECT 'seen before the crash: ' || count(*) || ', max id ' ||
	max(id) FROM seen"), $(q "SELECT 'delivered again: ' || count(*)
	FROM emissions_events(0, 100000) WHERE id > (SELECT max(id) FROM seen)")"
check_eq "every event of the new stream delivered once" "25|25" "$(q "
	SELECT count(*), count(DISTINCT payload->>'n')
	  FROM emissions_events(0, 100000)")"
check_eq "an id seen before the crash names the same event" "0" "$(q "
	SELECT count(*) FROM emissions_events(0, 100000) AS e
	  JOIN seen AS s USING (id) WHERE e.payload->>'n' <> s.n")"
check_eq "no event got an id at or below one seen, but its own" "0" "$(q "
	SELECT count(*) FROM emissions_events(0, 100000) AS e
	 WHERE e.id <= (SELECT max(id) FROM seen)
	   AND e.id NOT IN (SELECT id FROM seen)")"
check_eq "the reservation is still above every id" "t" "$(q "
	SELECT s.reserved_id >= e.max
	  FROM emissions_state AS s,
		   (SELECT max(id) FROM emissions_events(0, 100000)) AS e")"

# The same in two transactions, back to back, ten times: whether the worker
# sees the extension missing in between (it exits, and the CREATE EXTENSION
# that follows brings a worker back, however close behind it commits) or
# sees it recreated (it starts afresh), each new stream starts at id 1 with
# its ids reserved, and is delivered.
bad=""
for round in $(seq 1 10); do
	q "DROP EXTENSION emissions" >/dev/null
	q "CREATE EXTENSION emissions" >/dev/null
	emit 1 3 rc.again
	got="$(drained)|$(q "SELECT count(*), min(id), bool_and(id <= (SELECT
			reserved_id FROM emissions_state)) FROM emissions_events(0, 1000)")"
	[ "$got" = "t|3|1|t" ] || bad="$bad round $round: $got;"
done
check_eq "DROP EXTENSION then CREATE EXTENSION, ten times: fresh, delivered" \
	"" "$bad"

done_testing
