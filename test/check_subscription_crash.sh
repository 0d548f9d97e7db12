#!/usr/bin/env bash
# test/check_subscription_crash.sh: a consumer that follows a subscription
# through crashes ends with every committed event exactly once, in id order,
# and nothing of a transaction that did not commit (SPEC "Subscriptions"
# and "Stable ids").
#
# Four pgbench clients commit transactions that each insert three business
# rows and emit one event per row, carrying the row's random key (no row
# after a crash can take the key of one the crash lost); one in nine rolls
# back.  They commit at synchronous_commit = off, and the WAL writer is
# slowed down (a flush every 10 s or 1 GB), so that commits stay unflushed
# for long: the worst case for stable ids, where anything visible before
# its flush would be lost by the next crash (test/check_crash_suite.sh
# mixes producers at on and off).  A
# consumer, written here as a user would write one, follows the
# subscription "follower": it acknowledges what it has written out, reads
# the next page (emissions_read), writes out the events whose id is above
# the last one it wrote (after a crash it reads again what it had not
# acknowledged: ids name their events for good, so it deduplicates by id
# alone), and starts over; a lost connection makes it try again.  Its acks
# do not wait for their flush: a lost ack only makes it read again what it
# deduplicates by id (and a flushing ack would flush the worker's
# deliveries before them, hiding what this test looks for).  Under
# that load the server is stopped with -m immediate (crash recovery) and
# the delivery worker is killed with SIGKILL (the postmaster restarts every
# process, crash recovery too), alternately, SUB_CRASHES times (4).
#
# At the end, once the load has stopped, the worker has delivered
# everything and the consumer has acknowledged the last id: the consumer
# wrote every committed row's event exactly once, nothing else (no event
# of a rolled-back transaction or of one whose commit a crash lost), ids
# in strictly increasing order and exactly the log's ids, each naming the
# event the log gives it; the subscription's position is the last id.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

crashes="${SUB_CRASHES:-4}"
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "wal_writer_delay = '10s'" \
	"wal_writer_flush_after = '1GB'"
export PGDATABASE=postgres
log="$CLUSTER/server.log"
out="$CLUSTER/consumer.out"
stop_file="$CLUSTER/consumer.stop"
load=""
consumer=""
killed_pids=()

# Stop what this script started in the background, then the cluster.
stop_all() {
	local pid
	touch "$stop_file" 2>/dev/null || true
	for pid in "$load" "$consumer"; do
		if [ -n "$pid" ]; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	cleanup_clusters
}
trap stop_all EXIT

q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

q "CREATE EXTENSION emissions;
CREATE SEQUENCE business_ids;
CREATE TABLE business (id bigint PRIMARY KEY, txid xid8 NOT NULL,
	key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid());
CREATE TABLE consumed (seq bigserial PRIMARY KEY, id bigint NOT NULL,
	event jsonb NOT NULL);
CREATE TABLE logged (id bigint, payload jsonb, txid xid8)" >/dev/null
check_eq "the subscription starts at the beginning" 0 \
	"$(q "SELECT emissions_subscribe('follower', 0)")"

# The load: committed or rolled back.
for finish in COMMIT ROLLBACK; do
	kind="${finish,,}"
	cat >"$CLUSTER/load_$kind.sql" <<SQL
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business (id, txid)
	SELECT nextval('business_ids'), pg_current_xact_id()
	  FROM generate_series(1, 3)
	RETURNING id, key
)
SELECT count(emissions_emit('sub.row',
		jsonb_build_object('id', id, 'key', key, 'kind', '$kind')))
  FROM (SELECT id, key FROM rows ORDER BY id) AS r;
$finish;
SQL
	chmod a+r "$CLUSTER/load_$kind.sql"
done

start_load() {
	pgbench -n -c 4 -j 2 -T 3600 -f "$CLUSTER/load_commit.sql@8" \
		-f "$CLUSTER/load_rollback.sql@1" \
		>>"$CLUSTER/pgbench.log" 2>&1 &
	load=$!
}

stop_load() {
	kill -TERM "$load" 2>/dev/null || true
	wait "$load" || true
	load=""
}

# The consumer: one psql session at a time, kept open (a coprocess), so
# that it reads as soon as it can.  Each round: acknowledge what is
# written out, read the next page, write out what is new (ids above the
# last written), until the stop file exists.  When the session ends (the
# server went down) it starts another.  Each line of $out is
# "ID<TAB>event as JSON"; only those lines of psql's output start with a
# number and a tab (not the ack's result, nor an error: an ack of an id
# the server no longer has fails, and the read goes on).
follow() {
	local last=0 line id event got
	# A session that ended makes a write to it fail, not end the consumer;
	# bash then unsets SESSION and SESSION_PID, which reads as empty.
	trap '' PIPE
	set +eu
	while [ ! -e "$stop_file" ]; do
		coproc SESSION { psql -X -q -At -F $'\t' 2>&1; }
		printf '%s\n' "SET synchronous_commit = off;" \
			2>/dev/null 1>&"${SESSION[1]}" || true
		while [ ! -e "$stop_file" ]; do
			printf '%s\n' "SELECT emissions_ack('follower', $last);" \
				"SELECT id, json_build_object('id', id, 'type', type,
					'payload', payload, 'txid', txid)
				   FROM emissions_read('follower', 1000);" \
				'\echo -- end of page' 2>/dev/null 1>&"${SESSION[1]}" || break
			got=0
			while IFS= read -r line 2>/dev/null <&"${SESSION[0]}"; do
				[ "$line" = "-- end of page" ] && break
				[[ "$line" =~ ^[0-9]+$'\t' ]] || continue
				IFS=$'\t' read -r id event <<<"$line"
				got=1
				if [ "$id" -gt "$last" ]; then
					printf '%s\t%s\n' "$id" "$event" >>"$out"
					last="$id"
				fi
			done
			[ "$line" = "-- end of page" ] || break
			[ "$got" -eq 1 ] || sleep 0.05
		done
		kill "$SESSION_PID" 2>/dev/null || true
		wait "$SESSION_PID" 2>/dev/null || true
		sleep 0.1
	done
}

# Print how many times the server has said it accepts connections.
ready_count() {
	grep -c 'database system is ready to accept connections' "$log" || true
}

# Wait up to 60 s until the server has come up more than $1 times and
# answers; false if it does not.
wait_ready() {
	for _ in $(seq 1 600); do
		if [ "$(ready_count)" -gt "$1" ] && q 'SELECT 1' >/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Print the delivery worker's pid once there is one (up to 60 s).
worker_pid() {
	local pid
	for _ in $(seq 1 600); do
		pid="$(q 'SELECT worker_pid FROM emissions_stats' 2>/dev/null || true)"
		if [[ "$pid" =~ ^[0-9]+$ ]]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
}

# Sleep a random time between $1 and $2 milliseconds.
random_sleep() {
	local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

: >"$out"
follow &
consumer=$!

# Restart the server after an immediate shutdown; false if it fails.
restart() {
	as_pg pg_ctl -D "$CLUSTER/data" -l "$log" -w -t 60 start >/dev/null
}

for n in $(seq 1 "$crashes"); do
	start_load
	random_sleep 700 1500
	ready="$(ready_count)"
	if [ $((n % 2)) -eq 1 ]; then
		as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null
		check "crash $n (immediate shutdown): the server recovers" restart
	else
		pid="$(worker_pid)"
		if [ -z "$pid" ]; then
			not_ok "crash $n (worker SIGKILL): there is a worker to kill"
			stop_load
			continue
		fi
		kill -KILL "$pid"
		killed_pids+=("$pid")
		echo "$pid" >>"$CLUSTER/expected_crashes"
		check "crash $n (worker SIGKILL): the server recovers" \
			wait_ready "$ready"
	fi
	# Let the consumer follow the new worker under load for a moment.
	random_sleep 300 800
	stop_load
done

# Everything committed is delivered; the consumer acknowledges the last id.
check_eq "the worker delivers everything committed" t \
	"$(q "SELECT emissions_wait_delivered('60s')")"
last_id="$(q "SELECT max(id) FROM emissions_events(0, 2147483647)")"
acked=""
for _ in $(seq 1 600); do
	acked="$(q "SELECT position FROM emissions_subscriptions
		WHERE name = 'follower'")"
	[ "$acked" = "$last_id" ] && break
	sleep 0.1
done
check_eq "the consumer has acknowledged the last id" "$last_id" "$acked"
check "the consumer is still running" kill -0 "$consumer"
touch "$stop_file"
wait "$consumer" || true
consumer=""

q "INSERT INTO logged SELECT id, payload, txid
	 FROM emissions_events(0, 2147483647)" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c \
	"\\copy consumed (id, event) FROM pstdin WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\t')" \
	<"$out"

rows="$(q "SELECT count(*) FROM business")"
check "the load committed rows ($rows) across $crashes crashes" \
	test "$rows" -gt 0
check_eq "the consumer wrote every committed row's event exactly once (missing, repeated under a new id)" \
	"0 0" "$(q "SELECT count(*) FILTER (WHERE n = 0) || ' ' ||
			count(*) FILTER (WHERE n > 1)
		  FROM (SELECT b.key, count(c.seq) AS n FROM business AS b
				  LEFT JOIN consumed AS c
					ON c.event->'payload'->>'key' = b.key::text
				 GROUP BY b.key) AS x")"
check_eq "the consumer wrote nothing of a transaction that did not commit (rolled back, or lost to a crash)" \
	0 "$(q "SELECT count(*) FROM consumed AS c WHERE NOT EXISTS
		(SELECT FROM business AS b
		  WHERE b.key::text = c.event->'payload'->>'key')")"
check_eq "the consumer wrote ids in strictly increasing order" 0 \
	"$(q "SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY seq) AS prev
		FROM consumed) AS s WHERE id <= prev")"
check_eq "the consumer's ids are exactly the log's, each naming the log's event" \
	"0 0" "$(q "SELECT count(*) FILTER (WHERE l.id IS NULL OR c.id IS NULL
				OR l.payload <> c.event->'payload'
				OR l.txid::text <> c.event->>'txid') || ' ' ||
			(SELECT count(*) FROM logged WHERE payload->>'kind' = 'rollback')
		  FROM logged AS l FULL JOIN consumed AS c USING (id)")"
comment "$rows committed rows, $(q "SELECT count(*) FROM consumed") events written; workers killed: ${killed_pids[*]:-none}"

done_testing
