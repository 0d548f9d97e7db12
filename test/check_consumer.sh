#!/usr/bin/env bash
# test/check_consumer.sh: the consumer tool, emissions_consume (catch-up,
# following, reconnecting without missing or repeating, clean exit).
#
# Events committed before it starts are printed with --after 0, then new
# ones as they are delivered.  While a producer keeps committing events,
# the consumer's server connection is killed with pg_terminate_backend
# three times: once the producer is done and everything is delivered, the
# output holds every event exactly once, in id order, the same ids as
# emissions_events(0, ...).  An event whose envelope is too large for
# NOTIFY is printed whole, every line is a JSON envelope, --count and the
# default start (only new events) work, and SIGINT ends it with status 0.
# With --subscription it acknowledges what it printed, and a new run, after
# a SIGKILL too, continues after the last acknowledgement.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('consume.before', jsonb_build_object('n', g)))
  FROM generate_series(1, 20) AS g;
COMMIT;
SELECT emissions_wait_delivered('60s');
SQL

# The tool under test: the installed one, unless EMISSIONS_CONSUME names
# another build.
consume="${EMISSIONS_CONSUME:-emissions_consume}"
out="$CLUSTER/consumer.out"
err="$CLUSTER/consumer.err"
consumer=""

# Stop the consumer (if still running) when the script ends, then clean up.
stop_consumer() {
	[ -n "$consumer" ] && kill "$consumer" 2>/dev/null || true
	cleanup_clusters
}
trap stop_consumer EXIT

# Print the number of lines in the consumer's output.
lines() {
	wc -l <"$out" | tr -d ' '
}

# Wait up to 20 s until the output has N lines; false if it never does.
wait_lines() {
	local i
	for i in $(seq 1 200); do
		[ "$(lines)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Run SQL, printing unaligned tuples only.
sql() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1"
}

# Print the pid of the consumer's backend (empty if none), found by its
# application_name.
consumer_backend() {
	sql "SELECT pid FROM pg_stat_activity
		  WHERE application_name = 'emissions_consume'"
}

# Commit N transactions of 5 events of TYPE each, 0.05 s apart.
produce() {
	local i
	for i in $(seq 1 "$1"); do
		echo "BEGIN; SELECT emissions_start();
			  SELECT count(emissions_emit('$2', jsonb_build_object('tx', $i, 'n', g)))
				FROM generate_series(1, 5) AS g;
			  COMMIT; SELECT pg_sleep(0.05);"
	done | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
}

# 1. Catch-up, then following.
"$consume" --after 0 >"$out" 2>"$err" &
consumer=$!
check "events committed before the start are caught up with --after 0" \
	wait_lines 20
check_eq "the caught-up lines are the 20 events, in order" \
	"$(seq -s ' ' 1 20)" \
	"$(python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))' <"$out")"
produce 1 consume.new
check "new events are followed as they are delivered" wait_lines 25

# 2. The consumer's connection is killed mid-stream, three times.
produce 40 consume.during &
producer=$!
kills=0
for _ in 1 2 3; do
	sleep 0.4
	for _ in $(seq 1 100); do
		[ -n "$(consumer_backend)" ] && break
		sleep 0.05
	done
	[ "$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			   WHERE application_name = 'emissions_consume'")" = 1 ] &&
		kills=$((kills + 1))
done
wait "$producer"
check_eq "the consumer's connection was killed three times" 3 "$kills"
sql "SELECT emissions_wait_delivered('60s')" >/dev/null
total="$(sql "SELECT count(*) FROM emissions_events(0, 2147483647)")"
check_eq "225 events were delivered in all" 225 "$total"
wait_lines "$total" || true
sleep 0.5
check_eq "after the reconnects, every event is printed once, in id order" \
	"$(sql "SELECT string_agg(id::text, ' ' ORDER BY id)
			 FROM emissions_events(0, 2147483647)")" \
	"$(python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))' <"$out")"
check_eq "it reconnected after each kill" 3 \
	"$(grep -c 'reconnected; catching up after id' "$err" || true)"
check "the consumer is still running" kill -0 "$consumer"

# 2b. Events delivered while the consumer cannot see their notifications
# (stopped, its connection killed) are read by the catch-up on reconnect.
kill -STOP "$consumer"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE application_name = 'emissions_consume'" >/dev/null
produce 2 consume.unseen
sql "SELECT emissions_wait_delivered('60s')" >/dev/null
kill -CONT "$consumer"
total=$((total + 10))
check "the events delivered while it was cut off are caught up" \
	wait_lines "$total"

# 2c. Events whose notifications it misses (the channel was off) are read
# as a gap when a later notification jumps past them.
sql "ALTER SYSTEM SET emissions.notify_channel = ''" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
produce 1 consume.silent
sql "SELECT emissions_wait_delivered('60s')" >/dev/null
sql "ALTER SYSTEM RESET emissions.notify_channel" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
check_eq "nothing is printed while the channel is off" "$total" "$(lines)"
produce 1 consume.after_gap
total=$((total + 10))
check "a notification past a gap gets the gap read first" wait_lines "$total"

# 2d. An envelope with an id already printed is skipped.
sql "SELECT pg_notify('emissions', '{\"id\": 3, \"type\": \"consume.old\"}')" \
	>/dev/null
produce 1 consume.last
total=$((total + 5))
wait_lines "$total" || true
sleep 0.3
check_eq "after the reconnects and the gap, every event is printed once, in id order" \
	"$(sql "SELECT string_agg(id::text, ' ' ORDER BY id)
			 FROM emissions_events(0, 2147483647)")" \
	"$(python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))' <"$out")"

# 3. An envelope too large for NOTIFY is printed whole.
sql "BEGIN; SELECT emissions_start();
	 SELECT emissions_emit('consume.large',
						   jsonb_build_object('blob', repeat('x', 9000)));
	 COMMIT;" >/dev/null
check "the large event is printed" wait_lines $((total + 1))
check_eq "its line holds the whole payload" "consume.large 9000" \
	"$(tail -n 1 "$out" | python3 -c 'import json, sys
e = json.loads(sys.stdin.read())
print(e["type"], len(e["payload"]["blob"]))' 2>&1)"
check_eq "its line is the envelope emissions_event() gives" t \
	"$(sql "SELECT \$json\$$(tail -n 1 "$out")\$json\$::jsonb =
				   jsonb_build_object('id', id, 'type', type,
					   'payload', payload, 'metadata', metadata,
					   'emitted_at', emitted_at, 'txid', txid::text::bigint,
					   'database', current_database())
			  FROM emissions_event($((total + 1)))" 2>&1 | cut -c 1-200)"

# 4. Every line is a JSON envelope with the envelope's fields.
check_eq "every line is a JSON envelope" "$((total + 1))" \
	"$(python3 -c 'import json, sys
keys = {"id", "type", "payload", "metadata", "emitted_at", "txid", "database"}
print(sum(1 for l in sys.stdin if set(json.loads(l)) == keys))' <"$out" 2>&1)"

# 5. SIGINT ends it promptly, with status 0.
kill -INT "$consumer"
status=timeout
for _ in $(seq 1 30); do
	if ! kill -0 "$consumer" 2>/dev/null; then
		status=0
		wait "$consumer" || status=$?
		break
	fi
	sleep 0.1
done
consumer=""
check_eq "SIGINT ends it within 3 s with exit status 0" 0 "$status"

# 6. --count, and the default start: only events delivered from now on.
check_eq "--count 7 --after 10 prints ids 11 to 17, then exits 0" \
	"$(seq -s ' ' 11 17) status 0" \
	"$(timeout 20 "$consume" --after 10 --count 7 --max 3 |
		python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin), end="")'
		echo " status ${PIPESTATUS[0]}")"
timeout 20 "$consume" --count 1 >"$out" 2>"$err" &
consumer=$!
for _ in $(seq 1 100); do
	[ -n "$(consumer_backend)" ] && break
	sleep 0.05
done
sleep 0.3
sql "BEGIN; SELECT emissions_start(); SELECT emissions_emit('consume.fresh');
	 COMMIT;" >/dev/null
status=0
wait "$consumer" || status=$?
consumer=""
check_eq "without --after only a new event is printed" "consume.fresh 0" \
	"$(python3 -c 'import json, sys
print(" ".join(json.loads(l)["type"] for l in sys.stdin), end="")' <"$out") $status"

# 7. --subscription: reads through the subscription and acknowledges what
# it printed; a new run continues after the last acknowledgement, also
# after a SIGKILL (what was printed but not acknowledged comes again).
ids() {
	python3 -c 'import json, sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin), end="")'
}
all_ids="$(sql "SELECT string_agg(id::text, ' ' ORDER BY id)
	FROM emissions_events(0, 2147483647)")"
check_eq "--subscription --after 0 --count 10 prints the first 10 events" \
	"$(cut -d ' ' -f 1-10 <<<"$all_ids") status 0" \
	"$(timeout 20 "$consume" --subscription sub7 --after 0 --count 10 \
		--max 4 2>/dev/null | ids; echo " status ${PIPESTATUS[0]}")"
check_eq "and acknowledges them" "$(cut -d ' ' -f 10 <<<"$all_ids")" \
	"$(sql "SELECT position FROM emissions_subscriptions WHERE name = 'sub7'")"
check_eq "the next run continues after the last acknowledgement" \
	"$(cut -d ' ' -f 11-15 <<<"$all_ids")" \
	"$(timeout 20 "$consume" --subscription sub7 --count 5 --max 2 | ids)"
"$consume" --subscription sub7 --max 3 >"$out" 2>"$err" &
consumer=$!
produce 10 consume.sub &
producer=$!
sleep 0.3
kill -KILL "$consumer"
wait "$consumer" 2>/dev/null || true
wait "$producer"
sql "SELECT emissions_wait_delivered('60s')" >/dev/null
first_run="$(ids <"$out")"
"$consume" --subscription sub7 --max 3 >"$out" 2>>"$err" &
consumer=$!
all_ids="$(sql "SELECT string_agg(id::text, ' ' ORDER BY id)
	FROM emissions_events(0, 2147483647)")"
expected_ids="$(cut -d ' ' -f 16- <<<"$all_ids")"
last="$(awk '{print $NF}' <<<"$expected_ids")"
for _ in $(seq 1 200); do
	[ "$(ids <"$out" | awk '{print $NF}')" = "$last" ] && break
	sleep 0.1
done
kill -INT "$consumer"
wait "$consumer" || true
consumer=""
second_run="$(ids <"$out")"
# Print whether the words of $1 are increasing numbers.
increasing() {
	awk '{ for (i = 2; i <= NF; i++) if ($i <= $(i - 1)) exit 1 }' <<<"$1"
}
check "the run killed printed in id order (${first_run:0:40}...)" \
	increasing "$first_run"
check "the next run printed in id order (${second_run:0:40}...)" \
	increasing "$second_run"
check_eq "after a SIGKILL and a restart, every event is printed" \
	"$expected_ids" \
	"$(tr ' ' '\n' <<<"$first_run $second_run" | sort -nu | paste -sd ' ')"
repeated="$(tr ' ' '\n' <<<"$first_run $second_run" | sort -n | uniq -d |
	wc -l)"
check "only what was not acknowledged comes again ($repeated events)" \
	test "$repeated" -le 3
check_eq "the position is the last event printed" "$last" \
	"$(sql "SELECT position FROM emissions_subscriptions WHERE name = 'sub7'")"

cluster_stop "$CLUSTER"
done_testing
