#!/usr/bin/env bash
# test/check_examples.sh: the consumer examples (examples/python/consume.py
# with psycopg 3, examples/node/consume.js with pg) against a real cluster.
#
# Installs what is missing: Debian's python3-psycopg, and pg from the npm
# registry (npm ci in examples/node); a failed install is a failure.  Each
# example gets a database of its own.  Events committed before it starts
# are caught up (--after 0); events committed while it runs arrive by
# notification; an oversized event (sent without its payload) is printed
# whole; a rolled-back transaction's event never appears.  While a producer
# keeps committing, the example's server connection is killed with
# pg_terminate_backend: it reconnects, and its output is still every
# delivered event exactly once, in id order, the same as emissions_events
# returns; it exits 0 after --count.  The --poll mode (no LISTEN) follows
# new events too.  With --subscription, each example reads through a
# subscription and acknowledges what it printed: a new run continues after
# the last acknowledgement.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

# Debian's python3-psycopg is a module of Debian's python3.
PYTHON=/usr/bin/python3
BEFORE=20 # events committed before the example starts
ROUNDS=80 # producer transactions while it runs, 2 events each
BULK=3000 # events committed while it is disconnected

install_psycopg() {
	"$PYTHON" -c 'import psycopg' 2>/dev/null && return 0
	echo "# installing python3-psycopg"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq python3-psycopg >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq python3-psycopg >/dev/null; }
	"$PYTHON" -c 'import psycopg'
}

install_pg() {
	(cd "$top/examples/node" && node -e 'require("pg")' 2>/dev/null) &&
		return 0
	echo "# installing pg with npm"
	(cd "$top/examples/node" &&
		npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
		node -e 'require("pg")')
}

sql() {
	psql -X -At -v ON_ERROR_STOP=1 "$@"
}

# Print the number of lines of FILE whose event type is TYPE.
count_type() {
	grep -c "\"type\": *\"$2\"" "$1" || true
}

# Wait up to 20 s until FILE has at least N lines; print how many it has.
wait_lines() {
	local i
	for i in $(seq 1 200); do
		[ "$(wc -l <"$1")" -ge "$2" ] && break
		sleep 0.1
	done
	wc -l <"$1"
}

# Print the pid of the server connection with application_name APP, waiting
# up to 10 s for one that is not pid OLD.
backend_of() {
	local i pid
	for i in $(seq 1 100); do
		pid="$(sql -c "SELECT pid FROM pg_stat_activity
			WHERE application_name = '$1' AND pid <> ${2:-0}")"
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.1
	done
}

# Compare the consumer's output FILE with every delivered event (id, type,
# payload, in id order): print "same" or where they first differ.
compare_with_server() {
	sql -c "SELECT emissions_wait_delivered('60s')" >/dev/null
	sql -c "SELECT json_build_object('id', id, 'type', type,
			'payload', payload)
		FROM emissions_events(0, 2147483647) ORDER BY id" >"$1.server"
	"$PYTHON" - "$1" "$1.server" <<'PY'
import json, sys

def load(path):
    with open(path) as f:
        return [{k: e[k] for k in ("id", "type", "payload")}
                for e in map(json.loads, f)]

got, want = load(sys.argv[1]), load(sys.argv[2])
for i, (g, w) in enumerate(zip(got, want)):
    if g != w:
        print(f"line {i + 1}: id {g['id']} {g['type']},"
              f" expected id {w['id']} {w['type']}")
        break
else:
    n, m = len(got), len(want)
    print("same" if n == m else f"{n} lines for {m} events")
PY
}

# Commit ROUNDS transactions of 2 events, 40 ms apart; the 2nd also emits
# an event too large for NOTIFY, the 3rd and the 40th are rolled back.
produce() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		echo "BEGIN; SELECT emissions_start();"
		echo "SELECT emissions_emit('ex.live', '{\"n\": $i}');"
		echo "SELECT emissions_emit('ex.live', '{\"n\": $i, \"2nd\": 1}');"
		[ "$i" -eq 2 ] && echo "SELECT emissions_emit('ex.big',
			jsonb_build_object('big', repeat('x', 20000)));"
		if [ "$i" -eq 3 ] || [ "$i" -eq 40 ]; then
			echo "SELECT emissions_emit('ex.rolledback'); ROLLBACK;"
		else
			echo "COMMIT;"
		fi
		echo "SELECT pg_sleep(0.04);"
	done | sql -q >/dev/null
}

# Check the example NAME (application_name APP), run as CMD... [options].
check_example() {
	local name="$1" app="$2" out old new producer consumer status=0 total
	local failed_before="$failed"
	shift 2
	out="$CLUSTER/$name.out"
	export PGDATABASE="ex_$name"
	sql -q -d postgres -c "CREATE DATABASE $PGDATABASE" \
		-c "\\c $PGDATABASE" -c "CREATE EXTENSION emissions" \
		-c "SELECT emissions_start(), emissions_emit('ex.before',
			jsonb_build_object('n', g)) FROM generate_series(1, $BEFORE) g" \
		-c "BEGIN" -c "SELECT emissions_start()" \
		-c "SELECT emissions_emit('ex.rolledback')" -c "ROLLBACK" >/dev/null
	sql -c "SELECT emissions_wait_delivered('60s')" >/dev/null

	total=$((BEFORE + 2 * (ROUNDS - 2) + 1 + BULK))
	: >"$out"
	timeout 40 "$@" --after 0 --count "$total" >"$out" 2>"$out.err" &
	consumer=$!
	check_eq "$name: the events committed before it started are caught up" \
		"$BEFORE" "$(wait_lines "$out" "$BEFORE")"

	produce &
	producer=$!
	check "$name: events committed while it runs arrive" \
		test "$(wait_lines "$out" $((BEFORE + 10)))" -ge $((BEFORE + 10))
	# A stale envelope (already printed) is ignored.
	sql -c "SELECT pg_notify('emissions', json_build_object('id', 1,
		'type', 'ex.stale', 'payload', '{}'::json)::text)" >/dev/null
	old="$(backend_of "$app")"
	check_eq "$name: its connection is killed while events keep coming" \
		"t t" "$(sql -c "SELECT pg_terminate_backend(${old:-0})") $(
			kill -0 "$producer" 2>/dev/null && echo t)"
	# More than a page to catch up on after the reconnect, while the
	# producer's notifications keep arriving.
	sql -c "BEGIN" -c "SELECT emissions_start()" \
		-c "SELECT count(emissions_emit('ex.bulk', jsonb_build_object('n', g)))
			FROM generate_series(1, $BULK) AS g" -c "COMMIT" >/dev/null
	new="$(backend_of "$app" "${old:-0}")"
	check "$name: it reconnects" test -n "$new"
	wait "$producer"
	wait "$consumer" || status=$?
	check_eq "$name: it exits 0 after --count" 0 "$status"
	check_eq "$name: it printed every event exactly once, in id order" \
		same "$(compare_with_server "$out")"
	check_eq "$name: every live event arrived" \
		"$((2 * (ROUNDS - 2))) 1 $BULK 0" \
		"$(count_type "$out" ex.live) $(count_type "$out" ex.big) $(
			count_type "$out" ex.bulk) $(count_type "$out" ex.stale)"
	check_eq "$name: the event sent without its payload is printed whole" \
		20000 "$("$PYTHON" -c 'import json, sys
print(*[len(e["payload"]["big"]) for e in map(json.loads, sys.stdin)
        if e["type"] == "ex.big"])' <"$out")"
	check_eq "$name: a rolled-back transaction's event never appears" 0 \
		"$(count_type "$out" ex.rolledback)"
	[ "$failed" -eq "$failed_before" ] || comment "$(cat "$out.err")"

	# --poll: no LISTEN, new events are read every 0.2 s.
	old="$(sql -c "SELECT max(id) FROM emissions_events(0, 2147483647)")"
	timeout 20 "$@" --after "$old" --count 3 --poll 0.2 >"$out.poll" \
		2>"$out.err" &
	consumer=$!
	sleep 0.5
	sql -c "SELECT emissions_start(), emissions_emit('ex.polled',
		jsonb_build_object('n', g)) FROM generate_series(1, 3) AS g" >/dev/null
	status=0
	wait "$consumer" || status=$?
	sql -c "SELECT emissions_wait_delivered('60s')" >/dev/null
	check_eq "$name --poll: it prints the new events and exits 0" \
		"0 $(sql -c "SELECT string_agg(id::text, ' ' ORDER BY id)
			FROM emissions_events($old)")" \
		"$status $("$PYTHON" -c 'import json, sys
print(*[e["id"] for e in map(json.loads, sys.stdin)])' <"$out.poll")"
}

# Check the example NAME with --subscription, run as CMD...: it reads
# through the subscription (created at --after 0), acknowledges what it
# printed, and a new run continues after the last acknowledgement; new
# events arrive by notification.
check_subscription_example() {
	local name="$1" out status=0 ids consumer
	shift
	out="$CLUSTER/$name.sub.out"
	export PGDATABASE="ex_sub_$name"
	sql -q -d postgres -c "CREATE DATABASE $PGDATABASE" \
		-c "\\c $PGDATABASE" -c "CREATE EXTENSION emissions" \
		-c "SELECT emissions_start(), emissions_emit('ex.sub',
			jsonb_build_object('n', g)) FROM generate_series(1, 15) g" \
		>/dev/null
	sql -c "SELECT emissions_wait_delivered('60s')" >/dev/null
	ids="$(sql -c "SELECT string_agg(id::text, ' ' ORDER BY id)
		FROM emissions_events(0, 100)")"
	timeout 20 "$@" --subscription follow --after 0 --count 10 >"$out" \
		2>"$out.err" || status=$?
	check_eq "$name --subscription: the first run prints 10 events, exits 0" \
		"0 $(cut -d ' ' -f 1-10 <<<"$ids")" \
		"$status $("$PYTHON" -c 'import json, sys
print(*[e["id"] for e in map(json.loads, sys.stdin)])' <"$out")"
	check_eq "$name --subscription: and acknowledges them" \
		"$(cut -d ' ' -f 10 <<<"$ids")" \
		"$(sql -c "SELECT position FROM emissions_subscriptions")"
	timeout 20 "$@" --subscription follow --count 8 >"$out" 2>>"$out.err" &
	consumer=$!
	sleep 1
	sql -c "SELECT emissions_start(), emissions_emit('ex.sub.live',
		jsonb_build_object('n', g)) FROM generate_series(1, 3) g" >/dev/null
	status=0
	wait "$consumer" || status=$?
	ids="$(sql -c "SELECT string_agg(id::text, ' ' ORDER BY id)
		FROM emissions_events(0, 100)")"
	check_eq "$name --subscription: the next run continues after the last acknowledgement, then follows" \
		"0 $(cut -d ' ' -f 11-18 <<<"$ids")" \
		"$status $("$PYTHON" -c 'import json, sys
print(*[e["id"] for e in map(json.loads, sys.stdin)])' <"$out")"
	check_eq "$name --subscription: everything printed is acknowledged" \
		"$(cut -d ' ' -f 18 <<<"$ids")" \
		"$(sql -c "SELECT position FROM emissions_subscriptions")"
	[ "$status" -eq 0 ] || comment "$(cat "$out.err")"
}

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"

if check "python3-psycopg is installed" install_psycopg; then
	check_example python emissions-example-python \
		"$PYTHON" "$top/examples/python/consume.py"
	check_subscription_example python \
		"$PYTHON" "$top/examples/python/consume.py"
fi
if check "pg is installed from the npm registry" install_pg; then
	check_example node emissions-example-node \
		node "$top/examples/node/consume.js"
	check_subscription_example node node "$top/examples/node/consume.js"
fi

cluster_stop "$CLUSTER"
done_testing
