#!/usr/bin/env bash
# test/check_relay_webhook.sh: emissions_relay to HTTP webhooks.
#
# A test receiver (test/helpers/webhook_receiver.py) logs every request.
# Against one that misbehaves at random (500, 503, 429 with Retry-After,
# answers slower than the relay's timeout, dropped connections), the relay
# gets every event through at least once, one at a time in id order (the
# first arrivals are in id order), each repeat with the same
# Idempotency-Key, every body signed with HMAC-SHA256 that the receiver
# verifies (and a wrong secret does not), with the extra headers of
# --header-file, and --progress logs its rate and lag.  --batch sends JSON
# arrays (CloudEvents' batched mode with --format cloudevents);
# --format cloudevents alone uses the binary mode
# (ce-* headers, the payload as body, traceparent from the metadata).  A
# receiver that refuses (400) stops the relay after --max-attempts with a
# message and status 1, the subscription left before the event; with
# --dead-letter the refused events go to the file and the relay goes on.
# --types forwards the matching types and acknowledges the rest.  An event
# the receiver refuses with 503 for 2.5 s is retried, each attempt signed
# anew with its own timestamp, and nothing after it is sent meanwhile.
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
  FROM unnest(ARRAY['chaos', 'batch', 'binary', 'refused', 'dead',
                    'typed', 'held']) AS name;
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit(CASE g % 2 WHEN 0 THEN 'order.created'
                                       ELSE 'user.signed_up' END,
                            jsonb_build_object('n', g),
                            CASE WHEN g % 2 = 0 THEN jsonb_build_object(
                              'traceparent',
                              '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
                            ELSE '{}' END))
  FROM generate_series(1, 100) AS g;
COMMIT;
SELECT emissions_wait_delivered('60s');
SQL
last="$(last_delivered)"
printf 'a secret with spaces\n' >"$work/secret"
printf '# extra headers\nX-Relay-Test: yes\n\nAuthorization: Bearer t0ken\n' \
	>"$work/headers"

# 1. A receiver misbehaving at random, one event per request.
receiver chaos --chaos 25 --secret-file "$work/secret"
started=$SECONDS
relay_bg "$chaos" chaos --secret-file "$work/secret" \
	--header-file "$work/headers" --timeout 1 --progress
check "the relay gets every event through a misbehaving receiver" \
	wait_caught_up chaos 90
# Long enough for a --progress line (every 5 s).
[ $((SECONDS - started)) -ge 6 ] || sleep $((6 - (SECONDS - started)))
relay_stop
check_eq "SIGTERM ends the relay with status 0" 0 "$relay_status"
check_log "every event was accepted at least once" "$chaos" '
accepted = {i for r in records if r["outcome"] in (200, 204) for i in r["ids"]}
problems = ["event %d never accepted" % i for i in events if i not in accepted]'
check_log "each request carries one event, its Idempotency-Key the same at every repeat" \
	"$chaos" '
problems = ["request %s with key %s" % (r["ids"], r["key"]) for r in records
            if len(r["ids"]) != 1 or r["key"] != "postgres:%d" % r["ids"][0]]'
check_log "the first arrivals are in id order" "$chaos" '
first = []
for r in records:
    if r["ids"][0] not in first:
        first.append(r["ids"][0])
if first != sorted(events):
    problems.append("first arrivals: %s" % first[:20])'
check_log "the receiver answered badly at times, and the relay tried again" \
	"$chaos" '
bad = [r for r in records if r["outcome"] not in (200, 204)]
if not bad or len(records) <= len(events):
    problems.append("%d requests, %d bad answers" % (len(records), len(bad)))'
check "--progress logs the rate, the position and the lag" \
	grep -qE 'UTC emissions_relay: relayed [0-9]+ events \([0-9]+/s\), position [0-9]+, lag [0-9]+ events' \
	"$chaos/relay.err"
check "the retries are logged with the receiver's answer" \
	grep -qE 'sending event [0-9]+ failed \((HTTP status|Timeout|.*timed out|Empty reply|Recv failure|Server returned nothing)' \
	"$chaos/relay.err"
check_log "every body is an envelope with the payload, signed, with the extra headers" \
	"$chaos" '
for r in records:
    doc = json.loads(r["body"])
    t, payload = events[r["ids"][0]]
    if doc["type"] != t or doc["payload"] != payload or \
       r["content_type"] != "application/json":
        problems.append("body %s" % r["body"])
    if r["signature_ok"] is not True:
        problems.append("signature of %s" % r["ids"])
    if r["extra"] != "yes":
        problems.append("no X-Relay-Test header in %s" % r["ids"])'
check_log "the signature is HMAC-SHA256 of \"T.BODY\" with the secret, and another secret does not match" \
	"$chaos" '
def check(secret, r):
    parts = dict(p.split("=", 1) for p in r["signature"].split(","))
    mac = hmac.new(secret, parts["t"].encode() + b"." + r["body"].encode(),
                   hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])
for r in records:
    if not check(b"a secret with spaces", r) or check(b"another secret", r):
        problems.append("signature %s of %s" % (r["signature"], r["ids"]))'

# 2. Batches of CloudEvents.
receiver batch
relay_bg "$batch" batch --batch 16 --format cloudevents
check "the batching relay catches up" wait_caught_up batch 30
relay_stop
check_log "--batch 16 --format cloudevents posts arrays of at most 16 valid CloudEvents, every event once, in order" \
	"$batch" '
ids = []
for r in records:
    if r["content_type"] != "application/cloudevents-batch+json":
        problems.append("content type %s" % r["content_type"])
    batch = json.loads(r["body"])
    if not 1 <= len(batch) <= 16:
        problems.append("a batch of %d" % len(batch))
    if r["key"] != "postgres:%s-%s" % (batch[0]["id"], batch[-1]["id"]) and len(batch) > 1:
        problems.append("batch key %s" % r["key"])
    for ce in batch:
        t, payload = events[int(ce["id"])]
        if ce.get("specversion") != "1.0" or ce.get("type") != t or \
           ce.get("data") != payload or ce.get("source") != "/emissions/postgres" or \
           ce.get("datacontenttype") != "application/json" or \
           not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", ce.get("time", "")):
            problems.append("CloudEvent %s" % ce)
        ids.append(int(ce["id"]))
if ids != sorted(events):
    problems.append("ids %s" % ids[:20])'

# 3. One CloudEvent per request: binary mode.
receiver binary
relay_bg "$binary" binary --format cloudevents --source urn:shop:orders
check "the binary-mode relay catches up" wait_caught_up binary 30
relay_stop
check_log "--format cloudevents posts the payload with ce-* headers and the traceparent" \
	"$binary" '
for r in records:
    i = r["ids"][0]
    t, payload = events[i]
    ce = r["ce"]
    want = {"ce-specversion": "1.0", "ce-id": str(i), "ce-type": t,
            "ce-source": "urn:shop:orders"}
    if any(ce.get(k) != v for k, v in want.items()) or \
       json.loads(r["body"]) != payload or "ce-time" not in ce:
        problems.append("request %s: %s" % (ce, r["body"]))
    if (payload["n"] % 2 == 0) != ("traceparent" in ce):
        problems.append("traceparent of %d: %s" % (i, ce))'

# 4. A refusing receiver: stop after --max-attempts, position unchanged.
receiver refusing --status 400
status=0
timeout 60 "$relay" -d dbname=postgres -s refused \
	--to "$(cat "$refusing/hook.url")" --max-attempts 2 \
	2>"$refusing/relay.err" || status=$?
check_eq "a receiver's 400 stops the relay with status 1" 1 "$status"
check "the message names the event, the attempts and the answer" \
	grep -qE 'refused event [0-9]+ after 2 attempts \(HTTP status 400' \
	"$refusing/relay.err"
check_eq "the refused event was tried twice" 2 "$(wc -l <"$refusing/hook.log")"
check_eq "the subscription stays before the refused event" 0 \
	"$(sub_position refused)"

# 5. The same with --dead-letter: the events go to the file, the relay on.
receiver deadend --status 422
relay_bg "$deadend" dead --max-attempts 1 --dead-letter "$deadend/dead.jsonl"
check "with --dead-letter the relay goes on past refused events" \
	wait_caught_up dead 60
relay_stop
check_eq "every refused event is in the dead letter file" "$last" \
	"$(python3 -c 'import json, sys
print(len({json.loads(l)["event"]["id"] for l in open(sys.argv[1])
           if json.loads(l)["status"] == 422}))' "$deadend/dead.jsonl")"

# 6. --types, with the secret from the environment.
receiver typed --secret-file "$work/secret"
RELAY_SECRET="$(cat "$work/secret")" relay_bg "$typed" typed \
	--types 'order.*' --secret-env RELAY_SECRET
check "with --types the subscription is acknowledged past the other types" \
	wait_caught_up typed 30
relay_stop
check_log "with --types 'order.*' only the order events arrive, signed with the secret from the environment" \
	"$typed" '
got = sorted(i for r in records for i in r["ids"])
want = sorted(i for i, (t, p) in events.items() if t.startswith("order."))
if sorted(set(got)) != want:
    problems.append("got %s" % got[:20])
problems += ["signature of %s" % r["ids"] for r in records
             if r["signature_ok"] is not True]'

# 7. One event refused with 503 for 2.5 s: retried until accepted, each
# attempt signed again (a receiver's tolerance for old timestamps must not
# refuse the retries after a long outage), nothing after it sent meanwhile.
held_id=$(($(sql "SELECT min(id) FROM emissions_events(0, 2147483647)") + 10))
receiver held --refuse-id "$held_id" --refuse-for 2.5 \
	--secret-file "$work/secret"
relay_bg "$held" held --secret-file "$work/secret"
check "the relay catches up once the refused event is accepted" \
	wait_caught_up held 60
relay_stop
check_log "event $held_id was retried with its key, each attempt signed anew, nothing after it sent meanwhile" \
	"$held" '
target = '"$held_id"'
tries = [r for r in records if target in r["ids"]]
accepted_at = min(r["time"] for r in tries if r["outcome"] in (200, 204))
early = [r["ids"] for r in records if r["ids"][0] > target and
         r["time"] < accepted_at]
if len(tries) < 2 or tries[0]["outcome"] != 503:
    problems.append("event %d: %s" % (target, [r["outcome"] for r in tries]))
if any(r["key"] != "postgres:%d" % target for r in tries):
    problems.append("keys %s" % [r["key"] for r in tries])
stamps = [r["signature"].split(",")[0] for r in tries]
if any(r["signature_ok"] is not True for r in tries) or \
   len(set(stamps)) < 2:
    problems.append("signatures %s" % [r["signature"] for r in tries])
if early:
    problems.append("sent before it was accepted: %s" % early[:5])'

done_testing
