#!/usr/bin/env bash
# test/check_relay_nats.sh: emissions_relay into NATS JetStream.
#
# A throwaway nats-server with JetStream (file storage, a free port) takes
# the events of a subscription: the relay creates the stream when asked,
# publishes each event to SUBJECT.<type> with Nats-Msg-Id DATABASE:ID, and
# acknowledges the subscription up to the end.  The stream then holds each
# delivered event once, in id order, with the envelope's content; nothing
# of a rolled-back transaction.  A second run, restarted from an older
# position, adds nothing (JetStream drops the republished ids).  --types
# forwards only matching types and still acknowledges the rest;
# --format cloudevents publishes valid CloudEvents 1.0 JSON with the
# traceparent from the metadata.  An idle relay is woken by LISTEN, and
# reads anyway every 5 s.  Credentials come in the URL of a file
# (--to-file); TLS with the CA of --nats-ca.  A publish JetStream leaves
# unanswered (the server stopped) fails after --timeout, and the relay
# tries again until it is answered.  A read that PostgreSQL ends (the
# relay's backend terminated while it waits for a lock) is made again on a
# new connection, and nothing is lost or repeated.  SIGTERM ends it with
# status 0 after the acknowledgement, log lines carry timestamps, --help
# prints the usage, and what cannot work is refused with a message and
# status 1: no stream without --create-stream, a stream that does not
# take the subject, an unknown scheme, HTTP options on a NATS target, a
# missing subscription, a server that refuses the credentials, a server
# certificate not trusted.
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

cluster_start "shared_preload_libraries = 'emissions'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions' >/dev/null
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT emissions_subscribe('to_nats', 0);
SELECT emissions_subscribe('typed', 0);
SELECT emissions_subscribe('tiny_ring', 0);
SELECT emissions_subscribe('cloud', 0);
SELECT emissions_subscribe('secured', 0);
SELECT emissions_subscribe('tls', 0);
SELECT emissions_subscribe('stalled', 0);
SELECT emissions_subscribe('lost_read', 0);
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit(CASE g % 3 WHEN 0 THEN 'order.created'
                                       WHEN 1 THEN 'order.paid'
                                       ELSE 'user.signed_up' END,
                            jsonb_build_object('n', g, 'text', 'é "quoted"'),
                            CASE WHEN g % 2 = 0 THEN jsonb_build_object(
                              'traceparent',
                              '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
                            ELSE '{}' END))
  FROM generate_series(1, 150) AS g;
COMMIT;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('rolled.back', '{"never": true}');
ROLLBACK;
SELECT emissions_wait_delivered('60s');
SQL

# Run the relay in the background with the given options; its stderr goes
# to $work/relay.err, its PID to var relay_pid.
relay_bg() {
	"$relay" -d "dbname=postgres" "$@" 2>>"$work/relay.err" &
	relay_pid=$!
	register_pid "$relay_pid"
}

# Stop the relay with SIGTERM; its exit status goes to var relay_status
# (that of its end, if it has ended already).
relay_stop() {
	relay_status=0
	kill -TERM "$relay_pid" 2>/dev/null || true
	wait "$relay_pid" || relay_status=$?
}

# Check that the stream dump $1 holds exactly the delivered events of the
# types matching regex $2, once each, in id order, on subjects $3.<type>,
# as envelopes (or CloudEvents with $4 = cloudevents) equal to the
# database's, emitted_at (time) as to_json() writes it.
check_stream() {
	db_events >"$work/db.tsv"
	python3 - "$1" "$work/db.tsv" "$2" "$3" "${4:-envelope}" <<'PY'
import json, re, sys
dump, db, pattern, prefix, fmt = sys.argv[1:]
events = {}
times = {}
for line in open(db):
    i, t, e, p = line.rstrip("\n").split("\t", 3)
    if re.fullmatch(pattern, t):
        events[int(i)] = (t, json.loads(p))
        times[int(i)] = json.loads(e)
ids, problems = [], []
for line in open(dump):
    seq, msgid, subject, data = line.rstrip("\n").split("\t", 3)
    doc = json.loads(data)
    i = int(doc["id"])
    ids.append(i)
    if msgid != "postgres:%d" % i:
        problems.append("message id %s for event %d" % (msgid, i))
    t, payload = events.get(i, (None, None))
    if t is None:
        problems.append("event %d should not be in the stream" % i)
        continue
    if subject != prefix + "." + t:
        problems.append("subject %s for type %s" % (subject, t))
    if fmt == "envelope":
        if doc["type"] != t or doc["payload"] != payload or \
           doc["database"] != "postgres" or doc["emitted_at"] != times[i]:
            problems.append("content of event %d: %s" % (i, data))
    else:
        for attr in ("specversion", "id", "source", "type", "time",
                     "datacontenttype", "data"):
            if attr not in doc:
                problems.append("event %d lacks %s" % (i, attr))
        if doc.get("specversion") != "1.0" or doc.get("type") != t or \
           doc.get("data") != payload or doc.get("id") != str(i) or \
           doc.get("source") != "/emissions/postgres" or \
           doc.get("time") != times[i] or \
           doc.get("datacontenttype") != "application/json" or \
           not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                            r"(Z|[+-]\d\d:\d\d)", doc.get("time", "")):
            problems.append("CloudEvent %d: %s" % (i, data))
        want_trace = payload["n"] % 2 == 0
        if ("traceparent" in doc) != want_trace or (want_trace and
                doc["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"):
            problems.append("traceparent of event %d: %s" % (i, data))
if ids != sorted(events):
    problems.append("stream ids %s... differ from the events' %s..."
                    % (ids[:10], sorted(events)[:10]))
for p in problems[:10]:
    print("# " + p)
sys.exit(1 if problems else 0)
PY
}

# 1. Everything, into a stream the relay creates.
relay_bg -s to_nats --to "$url/events" --create-stream --stream EVENTS
check "the relay acknowledges the subscription up to the last event" \
	wait_caught_up to_nats 30
relay_stop
check_eq "SIGTERM ends the relay with status 0" 0 "$relay_status"
"$work/stream_dump" "$url" EVENTS >"$work/events.dump"
check "the stream holds every delivered event once, in id order, with its content and nothing rolled back" \
	check_stream "$work/events.dump" '.*' events
check_eq "the stream holds 150 messages" 150 "$(wc -l <"$work/events.dump")"
check "log lines start with a UTC timestamp" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]{12} UTC emissions_relay: stopped at id' \
	"$work/relay.err"

# Whether subscription $1 is still behind after $2 seconds.
not_caught_up_within() {
	! wait_caught_up "$1" "$2" >/dev/null
}

# 1b. An idle relay wakes on LISTEN: a new event goes out at once, not at
# the fallback read of an idle relay (every 5 s); listening on a channel
# nothing is sent to, it still goes out, at that fallback read.
relay_bg -s to_nats --to "$url/events" --stream EVENTS
wait_caught_up to_nats 30 >/dev/null
sleep 1
psql -X -q -c "SELECT emissions_start(), emissions_emit('order.created', '{\"n\": 1001}')" >/dev/null
check "an idle relay publishes a new event within 2 s (woken by LISTEN)" \
	wait_caught_up to_nats 2
relay_stop
relay_bg -s to_nats --to "$url/events" --stream EVENTS --channel nobody_sends_here
wait_caught_up to_nats 30 >/dev/null
psql -X -q -c "SELECT emissions_start(), emissions_emit('order.created', '{\"n\": 1003}')" >/dev/null
check "without a notification the event waits for the fallback read (more than 2 s)" \
	not_caught_up_within to_nats 2
check "... and then goes out" wait_caught_up to_nats 10
relay_stop
"$work/stream_dump" "$url" EVENTS >"$work/events.dump"

# 2. Restarted from an older position: the events go out again, and
# JetStream's duplicate detection drops them all.
psql -X -q -c "SELECT emissions_unsubscribe('to_nats')" \
	-c "SELECT emissions_subscribe('to_nats', 0)" >/dev/null
relay_bg -s to_nats --to "$url/events" --stream EVENTS
check "a second run from position 0 catches up too" wait_caught_up to_nats 30
relay_stop
"$work/stream_dump" "$url" EVENTS >"$work/events2.dump"
check "republished events are not stored twice" \
	cmp -s "$work/events.dump" "$work/events2.dump"

# 3. --types: only order.*, the rest acknowledged all the same.
relay_bg -s typed --to "$url/typed" --create-stream --types 'order.*'
check "with --types the subscription is acknowledged past the other types" \
	wait_caught_up typed 30
relay_stop
"$work/stream_dump" "$url" TYPED >"$work/typed.dump"
check "with --types 'order.*' the stream holds the order events only" \
	check_stream "$work/typed.dump" 'order\..*' typed

# 3b. A ring far smaller than a page: each page read ahead goes out a few
# events at a time as answers make room, the skipped types in their turn.
relay_bg -s tiny_ring --to "$url/tiny" --create-stream --types 'order.*' \
	--max-in-flight 3 --page 17
check "with 3 in flight and pages of 17 the subscription is acknowledged to the end" \
	wait_caught_up tiny_ring 60
relay_stop
"$work/stream_dump" "$url" TINY >"$work/tiny.dump"
check "with 3 in flight and pages of 17 the stream holds the order events once, in id order" \
	check_stream "$work/tiny.dump" 'order\..*' tiny

# 4. CloudEvents.
relay_bg -s cloud --to "$url/ce" --create-stream --format cloudevents
check "the CloudEvents relay catches up" wait_caught_up cloud 30
relay_stop
"$work/stream_dump" "$url" CE >"$work/ce.dump"
check "every message is a valid CloudEvents 1.0 event with the payload as data and the traceparent of the metadata" \
	check_stream "$work/ce.dump" '.*' ce cloudevents

# 5. A server that wants a password: the URL, credentials included, from
# a file.
relay_workdir secured
nats_start "$secured" --user relay --pass 's3cret!'
secured_url="nats://relay:s3cret!@127.0.0.1:$(cat "$secured/nats.port")"
echo "$secured_url/auth" >"$secured/url"
"$relay" -d "dbname=postgres" -s secured --to-file "$secured/url" \
	--create-stream 2>>"$work/relay.err" &
relay_pid=$!
register_pid "$relay_pid"
check "with the credentials in the URL of --to-file the relay catches up" \
	wait_caught_up secured 30
relay_stop
check_eq "the secured stream holds every event" "$(db_events | wc -l)" \
	"$("$work/stream_dump" "$secured_url" AUTH | wc -l)"

# 6. TLS: a server with a certificate of a CA of our own, trusted with
# --nats-ca.
relay_workdir tls
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" \
	-out "$tls/ca.pem" -days 2 -subj "/CN=relay test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$tls/server.key" \
	-out "$tls/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/ext.cnf"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" \
	-CAkey "$tls/ca.key" -CAcreateserial -out "$tls/server.pem" -days 2 \
	-extfile "$tls/ext.cnf" 2>/dev/null
nats_start "$tls" --tls --tlscert "$tls/server.pem" --tlskey "$tls/server.key"
tls_url="tls://127.0.0.1:$(cat "$tls/nats.port")"
"$relay" -d "dbname=postgres" -s tls --to "$tls_url/tls" --create-stream \
	--nats-ca "$tls/ca.pem" 2>>"$work/relay.err" &
relay_pid=$!
register_pid "$relay_pid"
check "over TLS, with the CA of --nats-ca, the relay catches up" \
	wait_caught_up tls 30
relay_stop

# Commit 20 order.created events, n from $1 + 1 on.
emit_orders() {
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('order.created', jsonb_build_object('n', $1 + g)))
  FROM generate_series(1, 20) AS g;
COMMIT;
SQL
}

# 6b. JetStream stops answering (nats-server stopped with SIGSTOP while
# events go out): the relay gives up on the publishes after --timeout,
# tries again until the server answers, and the stream still holds every
# event once, in id order.
relay_bg -s stalled --to "$url/stalled" --create-stream --timeout 1
wait_caught_up stalled 30 >/dev/null
nats_pid="$(cat "$work/nats.pid")"
kill -STOP "$nats_pid"
emit_orders 1000
sleep 4
kill -CONT "$nats_pid"
check "a publish JetStream leaves unanswered fails after --timeout" \
	grep -q 'no answer from JetStream within 1 s' "$work/relay.err"
check "once JetStream answers again the relay catches up" \
	wait_caught_up stalled 30
relay_stop
"$work/stream_dump" "$url" STALLED >"$work/stalled.dump"
check "after the stall the stream holds every event once, in id order" \
	check_stream "$work/stalled.dump" '.*' stalled

# 6c. PostgreSQL ends the relay's connection while the relay waits for a
# page: its idle read (one every 5 s) is held up by a lock on the event
# log, and its backend is terminated.  The relay connects again, reads
# again (held up again, until the lock goes), carries on, and the stream
# still holds every event once, in id order.
relay_bg -s lost_read --to "$url/lost_read" --create-stream
wait_caught_up lost_read 30 >/dev/null
PGAPPNAME=log_locker psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL' &
BEGIN;
LOCK TABLE emissions_log IN ACCESS EXCLUSIVE MODE;
SELECT pg_sleep(120);
SQL
register_pid $!
# The PIDs of the relay's backends waiting for the lock on the log.
waiting_reads() {
	psql -X -At -c "SELECT pid FROM pg_stat_activity
		WHERE application_name = 'emissions_relay' AND wait_event_type = 'Lock'"
}
# Wait up to 15 s for a relay read waiting for the lock, other than that
# of backend $1 (if not empty); print its backend's PID.
wait_read_held() {
	local pid
	for _ in $(seq 1 150); do
		pid="$(waiting_reads | head -n 1)"
		if [ -n "$pid" ] && [ "$pid" != "${1:-}" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
	return 1
}
held="$(wait_read_held "" || true)"
check "the relay's read waits for the lock on the event log" test -n "$held"
psql -X -q -c "SELECT pg_terminate_backend($held)" >/dev/null
again="$(wait_read_held "$held" || true)"
check "after its backend is terminated, the relay connects and reads again" \
	test -n "$again"
psql -X -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE application_name = 'log_locker'" >/dev/null
emit_orders 2000
check "once the lock is gone the relay catches up" wait_caught_up lost_read 30
check "the relay logged the lost read" \
	grep -q 'connection to PostgreSQL lost during reading' "$work/relay.err"
relay_stop
check_eq "... and it ends with status 0 on SIGTERM" 0 "$relay_status"
"$work/stream_dump" "$url" LOST_READ >"$work/lost_read.dump"
check "after the lost read the stream holds every event once, in id order" \
	check_stream "$work/lost_read.dump" '.*' lost_read

# 7. Refusals: status 1 and a message naming the problem.
refused_url="nats://127.0.0.1:$(cat "$secured/nats.port")/auth"
# Run the relay in the foreground; check its status is 1 and its stderr
# matches regex $2: refused DESC REGEX OPTION...
refused() {
	local desc="$1" regex="$2" status=0
	shift 2
	timeout 30 "$relay" -d "dbname=postgres" "$@" >/dev/null \
		2>"$work/refused.err" || status=$?
	if [ "$status" -eq 1 ] && grep -qE "$regex" "$work/refused.err"; then
		ok "$desc"
	else
		not_ok "$desc"
		comment "status $status: $(cat "$work/refused.err")"
	fi
}
refused "a missing stream is refused without --create-stream" \
	'has no stream "NOPE"' -s to_nats --to "$url/nope"
refused "a stream that does not take the subject is refused" \
	'does not take "other.>"' -s to_nats --to "$url/other" --stream EVENTS
refused "an unknown scheme is refused" 'unsupported target' \
	-s to_nats --to "amqp://127.0.0.1/x"
refused "a subject with a wildcard is refused" 'invalid NATS subject' \
	-s to_nats --to "$url/a.*"
refused "HTTP options on a NATS target are refused" 'are for HTTP targets' \
	-s to_nats --to "$url/events" --batch 10
refused "a missing subscription is refused with the server's message" \
	'no_such_sub' -s no_such_sub --to "$url/events" --stream EVENTS
refused "no --to is refused" 'no target' -s to_nats
# Whether --help exits with status 0 and names option $1.
help_names() {
	local text
	text="$("$relay" --help)" && grep -q -- "$1" <<<"$text"
}
check "--help prints the usage and exits with status 0" \
	help_names "--subscription=NAME"
refused "a server that refuses the credentials stops the relay" \
	'cannot be made \(its credentials' -s secured --to "$refused_url"
refused "a server whose certificate is not trusted stops the relay" \
	'SSL handshake error.*|cannot be made' -s tls --to "$tls_url/tls"

done_testing
