#!/usr/bin/env bash
# test/check_relay_webhook_parallel.sh: emissions_relay --parallel N to
# HTTP webhooks.
#
# Against the test receiver (test/helpers/webhook_receiver.py, a thread a
# connection, logging how many requests it was handling when each came),
# --parallel 8 gets every event through at least once with requests that
# really overlap; through a receiver that misbehaves at random (500, 503,
# 429 with Retry-After, slow answers, dropped connections) still every
# event, each repeat with the same Idempotency-Key and signed.  While the
# receiver refuses one event with 503, the later ones are accepted but the
# subscription's position never passes the refused event, then catches up
# once it is accepted.  A permanent refusal stops the relay (status 1, the
# position before the event), or with --dead-letter records exactly that
# event and goes on.  --batch arrays go in parallel too.  SIGTERM waits for
# the requests in flight and acknowledges only the events accepted without
# a gap.  --parallel with a nats:// target, or out of its range, is refused.
# shellcheck disable=SC2154  # the work directories are set by printf -v
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare
# shellcheck source=test/helpers/relay.sh
source "$top/test/helpers/relay.sh"
# shellcheck source=test/helpers/webhook.sh
source "$top/test/helpers/webhook.sh"

relay="${EMISSIONS_RELAY:-emissions_relay}"
relay_workdir work

cluster_start "shared_preload_libraries = 'emissions'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
SELECT emissions_subscribe(name, 0)
  FROM unnest(ARRAY['overlap', 'chaos', 'held', 'refused', 'dead', 'batch',
                    'stopped', 'late']) AS name;
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit(CASE g % 2 WHEN 0 THEN 'order.created'
                                       ELSE 'user.signed_up' END,
                            jsonb_build_object('n', g)))
  FROM generate_series(1, 200) AS g;
COMMIT;
SELECT emissions_wait_delivered('60s');
SQL
last="$(last_delivered)"
first="$(sql "SELECT min(id) FROM emissions_events(0, 2147483647)")"
# The event a receiver refuses: in the middle, with many after it.
target=$((first + 40))
printf 'a parallel secret\n' >"$work/secret"

# Sample subscription $1's position every 0.1 s until it reaches the last
# event (at most $2 seconds), appending "TIME POSITION" lines to file $3,
# TIME (seconds since the epoch) taken after the position was read.
sample_positions() {
	local sub="$1" limit="$2" out="$3" pos
	for _ in $(seq 1 $((limit * 10))); do
		pos="$(sub_position "$sub")"
		echo "$(date +%s.%N) $pos" >>"$out"
		[ "$pos" -ge "$last" ] && return 0
		sleep 0.1
	done
	return 1
}

# 1. Requests really overlap: answers held 50 ms, 8 at once.
receiver overlap --delay 0.05
relay_bg "$overlap" overlap --parallel 8
check "--parallel 8 gets every event through" wait_caught_up overlap 60
relay_stop
check_eq "SIGTERM ends the relay with status 0" 0 "$relay_status"
check_log "every event was accepted, in one request each with its own key" \
	"$overlap" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events if i not in accepted]
problems += ["request %s with key %s" % (r["ids"], r["key"]) for r in records
             if len(r["ids"]) != 1 or r["key"] != "postgres:%d" % r["ids"][0]]'
check_log "the receiver was handling more than one request at a time" \
	"$overlap" '
most = max(r["active"] for r in records)
if most < 2:
    problems.append("at most %d request at a time" % most)
if most > 8:
    problems.append("%d requests at a time, more than --parallel 8" % most)'

# 2. A receiver misbehaving at random.
receiver chaos --chaos 25 --secret-file "$work/secret"
relay_bg "$chaos" chaos --parallel 8 --timeout 1 --secret-file "$work/secret"
check "--parallel 8 gets every event through a misbehaving receiver" \
	wait_caught_up chaos 120
relay_stop
check_eq "SIGTERM ends the relay with status 0" 0 "$relay_status"
check_log "every event was accepted at least once, each repeat with the same key, signed" \
	"$chaos" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events if i not in accepted]
problems += ["request %s with key %s" % (r["ids"], r["key"]) for r in records
             if len(r["ids"]) != 1 or r["key"] != "postgres:%d" % r["ids"][0]]
problems += ["signature of %s" % r["ids"] for r in records
             if r["signature_ok"] is not True]
bad = [r for r in records if r["outcome"] not in (200, 204)]
if not bad:
    problems.append("the receiver never misbehaved")'
check "the retries are logged with the receiver's answer" \
	grep -qE 'sending event [0-9]+ failed \((HTTP status|Timeout|.*timed out|Empty reply|Recv failure|Server returned nothing)' \
	"$chaos/relay.err"

# 3. One event refused with 503 for 3 s: the others go on, the position
# stays before it until it is accepted.
receiver held --refuse-id "$target" --refuse-for 3 \
	--secret-file "$work/secret"
relay_bg "$held" held --parallel 8 --secret-file "$work/secret"
check "the relay catches up once the refused event is accepted" \
	sample_positions held 60 "$held/positions"
relay_stop
check_log "later events were accepted while event $target was refused, and it was retried with its key, signed anew" \
	"$held" '
target = '"$target"'
tries = [r for r in records if target in r["ids"]]
accepted_at = min(r["time"] for r in tries if r["outcome"] in (200, 204))
later = [r for r in records if r["ids"][0] > target and
         r["outcome"] in (200, 204) and r["time"] < accepted_at]
if len(tries) < 2 or tries[0]["outcome"] != 503:
    problems.append("event %d: %s" % (target, [r["outcome"] for r in tries]))
if any(r["key"] != "postgres:%d" % target for r in tries):
    problems.append("keys %s" % [r["key"] for r in tries])
stamps = [r["signature"].split(",")[0] for r in tries]
if any(r["signature_ok"] is not True for r in tries) or \
   len(set(stamps)) < 2:
    problems.append("signatures %s" % [r["signature"] for r in tries])
if len(later) < 10:
    problems.append("%d later events accepted before it" % len(later))'
check_log "the subscription never passed event $target before the receiver accepted it" \
	"$held" '
target = '"$target"'
accepted_at = min(r["time"] for r in records
                  if target in r["ids"] and r["outcome"] in (200, 204))
samples = [tuple(map(float, l.split()))
           for l in open(sys.argv[1].replace("hook.log", "positions"))]
early = [(t, p) for t, p in samples if p >= target and t < accepted_at]
held = [p for t, p in samples if t < accepted_at]
if early:
    problems.append("position %d at %f, accepted at %f" % (early[0][1], early[0][0], accepted_at))
if not held or max(held) != target - 1:
    problems.append("positions while refused: %s" % sorted(set(held)))'

# 4. A permanent refusal of one event: stop, position before it.
receiver refusing --refuse-id "$target" --refuse-status 400
status=0
timeout 60 "$relay" -d dbname=postgres -s refused \
	--to "$(cat "$refusing/hook.url")" --parallel 8 --max-attempts 2 \
	2>"$refusing/relay.err" || status=$?
check_eq "a receiver's 400 stops the relay with status 1" 1 "$status"
check "the message names the event, the attempts and the answer" \
	grep -qE "refused event $target after 2 attempts \(HTTP status 400" \
	"$refusing/relay.err"
position="$(sub_position refused)"
check_log "the subscription ($position) stays before the refused event, on accepted events" \
	"$refusing" '
position = '"$position"'
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
if position >= '"$target"':
    problems.append("position %d" % position)
problems += ["event %d acknowledged, never accepted" % i for i in events
             if i <= position and i not in accepted]'


# 5. The same with --dead-letter: exactly that event in the file, and on.
receiver deadend --refuse-id "$target" --refuse-status 422
relay_bg "$deadend" dead --parallel 8 --max-attempts 2 \
	--dead-letter "$deadend/dead.jsonl"
check "with --dead-letter the relay goes on past the refused event" \
	wait_caught_up dead 60
relay_stop
check_eq "the dead letter file holds exactly the refused event" \
	"$target 422" \
	"$(python3 -c 'import json, sys
print(" ".join("%d %d" % (json.loads(l)["event"]["id"], json.loads(l)["status"])
               for l in open(sys.argv[1])))' "$deadend/dead.jsonl")"
check_log "every other event was accepted" "$deadend" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events
            if i not in accepted and i != '"$target"']'

# 6. Batches in parallel.
receiver batch --delay 0.05
relay_bg "$batch" batch --parallel 4 --batch 10
check "--parallel 4 --batch 10 catches up" wait_caught_up batch 60
relay_stop
check_log "arrays of at most 10 events, keyed FIRST-LAST, every event once" \
	"$batch" '
ids = []
for r in records:
    if not 1 <= len(r["ids"]) <= 10:
        problems.append("a batch of %d" % len(r["ids"]))
    if len(r["ids"]) > 1 and \
       r["key"] != "postgres:%d-%d" % (r["ids"][0], r["ids"][-1]):
        problems.append("batch key %s" % r["key"])
    ids += r["ids"]
if sorted(ids) != sorted(events):
    problems.append("ids %s" % sorted(ids)[:20])
if max(r["active"] for r in records) < 2:
    problems.append("no overlap")'

# 7. SIGTERM with requests in flight (each answered after 1 s): they are
# awaited, and the events accepted without a gap are acknowledged.
receiver slow --delay 1
relay_bg "$slow" stopped --parallel 8 --timeout 5
for _ in $(seq 1 50); do
	[ -s "$slow/hook.log" ] && break
	sleep 0.1
done
sleep 0.3
relay_stop
check_eq "SIGTERM with requests in flight ends the relay with status 0" 0 \
	"$relay_status"
position="$(sub_position stopped)"
check_log "the relay waited for the requests in flight, then acknowledged all the events that came without a gap ($position)" \
	"$slow" '
position = '"$position"'
arrived = {i for r in records for i in r["ids"]}
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
prefix = 0
for i in sorted(events):
    if i not in arrived:
        break
    prefix = i
if arrived != accepted:
    problems.append("not all answered: %s" % sorted(arrived - accepted))
if position != prefix or position == 0:
    problems.append("position %d, events arrived up to %d" % (position, prefix))'

# 8. An idle relay relays the events committed later.
receiver late
relay_bg "$late" late --parallel 4
check "the relay catches up" wait_caught_up late 60
sql "BEGIN; SELECT emissions_start();
     SELECT count(emissions_emit('order.created', jsonb_build_object('n', g)))
       FROM generate_series(201, 220) AS g;
     COMMIT" >/dev/null
check "an idle relay relays the events committed later" wait_caught_up late 60
relay_stop
check_eq "SIGTERM ends the idle relay with status 0" 0 "$relay_status"
check_log "every event was accepted, the later ones too" "$late" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events if i not in accepted]
if len(events) != 220:
    problems.append("%d events" % len(events))'

# 9. What is refused before anything is sent.
status=0
"$relay" -d dbname=postgres -s overlap --to nats://127.0.0.1:4222/events \
	--parallel 8 2>"$work/nats.err" || status=$?
check_eq "--parallel with a nats:// target ends with status 1" 1 "$status"
check "... saying --parallel is for HTTP targets" \
	grep -q -- "--parallel is for HTTP targets" "$work/nats.err"
status=0
"$relay" -d dbname=postgres -s overlap --to http://127.0.0.1:1/ \
	--parallel 65 2>"$work/range.err" || status=$?
check_eq "--parallel 65 is refused" 1 "$status"
check "... with its range" grep -q -- "--parallel: \"65\" (from 1 to 64)" \
	"$work/range.err"

done_testing
