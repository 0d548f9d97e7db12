#!/usr/bin/env bash
# test/check_relay_crash.sh: emissions_relay through crashes, under load.
#
# A producer commits events (and rolls some back) while two relays follow
# their subscriptions, one into JetStream, one to the webhook test
# receiver, each restarted by a supervisor loop whenever it exits.
# Meanwhile the JetStream relay is killed with SIGKILL at random moments
# twelve times and the webhook relay five times, nats-server is killed
# with SIGKILL and restarted on its store, and PostgreSQL is stopped with
# -m immediate and started again.  Once the producer is done and both
# subscriptions have caught up:
# - the stream holds every committed event exactly once (by Nats-Msg-Id
#   and by content), in id order, and nothing of a rolled-back
#   transaction; every transaction whose COMMIT the producer saw is in it;
# - the receiver (which misbehaves at 1% of the requests, so that some
#   events are sent again) got every committed event at least once, each
#   repeat with the same Idempotency-Key, the first arrivals in id order;
# - the last run of each relay ends with status 0 on SIGTERM.
# shellcheck disable=SC2154  # the work directories are set by printf -v
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare
# shellcheck source=test/helpers/relay.sh
source "$top/test/helpers/relay.sh"

relay="${EMISSIONS_RELAY:-emissions_relay}"
relay_workdir work
build_helpers "$work"
nats_start "$work"
url="$(nats_url "$work")"
receiver_start "$work" --chaos 1

cluster_start "shared_preload_libraries = 'emissions'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
SELECT emissions_subscribe('crash_nats', 0);
SELECT emissions_subscribe('crash_hook', 0);
SQL

# Commit transactions of 10 events until $work/stop exists, each
# followed by a rolled-back one; a committed transaction's number goes to
# $work/committed once its COMMIT succeeded.  Errors (the server is down)
# only make it wait a little.  At most about 30 pairs a second: the
# receiver's misbehaviour costs the webhook relay about a second for each
# of 1% of its requests, so the events a faster machine commits must stay
# few enough for it to catch up within the test's time.
producer() {
	local i=0
	while [ ! -e "$work/stop" ]; do
		i=$((i + 1))
		if psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL; then
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('crash.event', jsonb_build_object('tx', $i, 'k', g)))
  FROM generate_series(1, 10) AS g;
COMMIT;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('crash.rolled_back', jsonb_build_object('tx', $i));
ROLLBACK;
SQL
			echo "$i" >>"$work/committed"
			sleep 0.03
		else
			sleep 0.2
		fi
	done
}

# Run a relay (NAME, then its options) again whenever it exits, until it
# exits once $work/stop_relays exists; its PID is kept in $work/NAME.pid,
# each exit status appended to $work/NAME.exits.
supervise() {
	local name="$1" status
	shift
	while :; do
		"$relay" -d "dbname=postgres" "$@" 2>>"$work/$name.err" &
		echo $! >"$work/$name.pid"
		status=0
		wait $! || status=$?
		echo "$status" >>"$work/$name.exits"
		[ -e "$work/stop_relays" ] && break
		sleep 0.2
	done
}

# Send SIGTERM to the relay NAME's current run, once the same run has been
# up for a second (a run the supervisor has just started may not have its
# signal handlers yet).  If the relay is between two runs, wait for the
# next one; give up after 30 s.
stop_relay() {
	local pidfile="$work/$1.pid" pid
	for _ in $(seq 1 30); do
		pid="$(cat "$pidfile")"
		sleep 1
		if [ "$pid" = "$(cat "$pidfile")" ] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null && return 0
		fi
	done
	comment "$1 was not running to be stopped: exits $(tr '\n' ' ' <"$work/$1.exits")"
	return 0
}

register_pidfile "$work/nats_relay.pid"
register_pidfile "$work/hook_relay.pid"
producer &
register_pid $!
producer_pid=$!
# (The shell's notes of killed jobs are not wanted.)
supervise nats_relay -s crash_nats --to "$url/crash" --create-stream \
	--max-in-flight 256 --timeout 2 2>/dev/null &
register_pid $!
nats_supervisor=$!
supervise hook_relay -s crash_hook --to "$(cat "$work/hook.url")" \
	--timeout 2 2>/dev/null &
register_pid $!
hook_supervisor=$!

# Kill PID file $1's process with SIGKILL.
kill_relay() {
	if [ -s "$1" ]; then kill -9 "$(cat "$1")" 2>/dev/null || true; fi
}

# Twelve SIGKILLs of the JetStream relay, five of the webhook relay;
# nats-server killed in round 5, PostgreSQL stopped in round 10.
for round in $(seq 1 14); do
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.4 + r / 32768 }')"
	case "$round" in
	5)
		nats_kill "$work"
		sleep 1
		nats_start "$work"
		;;
	10)
		as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null
		sleep 1
		as_pg pg_ctl -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
			start >/dev/null
		;;
	*)
		kill_relay "$work/nats_relay.pid"
		[ $((round % 2)) -eq 0 ] && kill_relay "$work/hook_relay.pid"
		;;
	esac
done
comment "$(wc -l <"$work/committed") transactions committed; catching up"
touch "$work/stop"
wait "$producer_pid" || true

check "the JetStream relay catches up after the crashes" \
	wait_caught_up crash_nats 90
comment "JetStream caught up; $(grep -c . "$work/hook.log") webhook requests so far"
check "the webhook relay catches up after the crashes" \
	wait_caught_up crash_hook 150
touch "$work/stop_relays"
stop_relay nats_relay
stop_relay hook_relay
for _ in $(seq 1 300); do
	kill -0 "$nats_supervisor" 2>/dev/null ||
		kill -0 "$hook_supervisor" 2>/dev/null || break
	sleep 0.1
done
comment "exit statuses: JetStream relay $(tr '\n' ' ' <"$work/nats_relay.exits")"
comment "exit statuses: webhook relay $(tr '\n' ' ' <"$work/hook_relay.exits")"
check_eq "the JetStream relay was killed (or stopped) 13 times and more" yes \
	"$([ "$(grep -c . "$work/nats_relay.exits")" -ge 13 ] && echo yes || echo no)"
check_eq "the last JetStream relay ends with status 0 on SIGTERM" 0 \
	"$(tail -n 1 "$work/nats_relay.exits")"
check_eq "the last webhook relay ends with status 0 on SIGTERM" 0 \
	"$(tail -n 1 "$work/hook_relay.exits")"
check "the JetStream relay saw nats-server go and come back" \
	grep -q 'the connection to the NATS server was lost' "$work/nats_relay.err"
check "the JetStream relay saw PostgreSQL go" \
	grep -q 'connection to PostgreSQL lost' "$work/nats_relay.err"
check "the webhook relay saw PostgreSQL go" \
	grep -q 'connection to PostgreSQL lost' "$work/hook_relay.err"

"$work/stream_dump" "$url" CRASH >"$work/stream.dump"
psql -X -At -F $'\t' -c "SELECT id, type, payload
	FROM emissions_events(0, 2147483647) ORDER BY id" >"$work/db.tsv"

# Run python3 code $2 over the stream, the receiver's log, the database's
# events and the committed transactions; it appends to "problems".
verify() {
	if python3 - "$work" "$2" >"$work/verify.out" <<'PY'
import json, sys
work, code = sys.argv[1:]
events = {}
for line in open(work + "/db.tsv"):
    i, t, p = line.rstrip("\n").split("\t", 2)
    events[int(i)] = (t, json.loads(p))
stream = []
for line in open(work + "/stream.dump"):
    seq, msgid, subject, data = line.rstrip("\n").split("\t", 3)
    stream.append((msgid, subject, json.loads(data)))
records = [json.loads(l) for l in open(work + "/hook.log")]
committed = [int(l) for l in open(work + "/committed")]
problems = []
exec(code)
for p in problems[:10]:
    print(p)
sys.exit(1 if problems else 0)
PY
	then
		ok "$1"
	else
		not_ok "$1"
		comment "$(cat "$work/verify.out")"
	fi
}

verify "nothing of a rolled-back transaction was delivered" '
problems = ["event %d of type %s" % (i, t) for i, (t, p) in events.items()
            if t != "crash.event"]'
verify "every transaction whose COMMIT succeeded is there with its 10 events" '
count = {}
for t, p in events.values():
    count[p["tx"]] = count.get(p["tx"], 0) + 1
problems = ["transaction %d has %d events" % (tx, count.get(tx, 0))
            for tx in committed if count.get(tx, 0) != 10]
if len(committed) < 50:
    problems.append("only %d transactions committed" % len(committed))'
verify "the stream holds every committed event exactly once by Nats-Msg-Id, in id order" '
ids = [d["id"] for m, s, d in stream]
if ids != sorted(events):
    problems.append("%d messages for %d events; first differences: %s" % (
        len(ids), len(events),
        [(a, b) for a, b in zip(ids, sorted(events)) if a != b][:5]))
problems += ["message id %s for event %d" % (m, d["id"]) for m, s, d in stream
             if m != "postgres:%d" % d["id"]]'
verify "each message has its event's content and subject" '
for m, s, d in stream:
    t, p = events.get(d["id"], (None, None))
    if d["payload"] != p or d["type"] != t or s != "crash." + str(t):
        problems.append("message %s: %s %s" % (m, s, d))'
verify "the receiver got every committed event at least once" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events if i not in accepted]'
verify "each repeat to the receiver has the same Idempotency-Key, and repeats happened" '
problems = ["request %s with key %s" % (r["ids"], r["key"]) for r in records
            if r["key"] != "postgres:%d" % r["ids"][0]]
if len(records) <= len(events):
    problems.append("no repeat at all in %d requests" % len(records))'
verify "the receiver's first arrivals are in id order" '
seen, first = set(), []
for r in records:
    if r["ids"][0] not in seen:
        seen.add(r["ids"][0])
        first.append(r["ids"][0])
if first != sorted(events):
    problems.append("first arrivals out of order: %s" % [
        (a, b) for a, b in zip(first, sorted(events)) if a != b][:5])'

done_testing
