#!/usr/bin/env bash
# bench/relay.sh: emissions_relay into NATS JetStream and to a webhook.
#
# A throwaway cluster (test/lib.sh) with emissions preloaded, a throwaway
# nats-server with JetStream and file storage (test/helpers/relay.sh: free
# port, temp directory, stopped by its PID), and, in one run:
#
# 1. Throughput into JetStream under sustained producer load.  EVENTS
#    events (about 200 bytes of envelope each) are committed and delivered
#    first; then pgbench commits LOAD_RATE transactions a second of 10
#    events each for the rest of the run.  Side by side on those same
#    events: bench/relay/plain_publish.c, a plain libnats program that
#    publishes them (read into memory beforehand) as the relay's messages
#    are (js_PublishMsgAsync, the same subjects, bodies and headers:
#    Nats-Msg-Id, Content-Type) with MAX_IN_FLIGHT in flight: the broker's
#    limit here, timed once it has connected and made its stream; and
#    emissions_relay following a subscription from before them, timed from
#    its log line saying it has connected to both sides and starts
#    relaying, until the subscription's position passes the last of them
#    (it reads them from PostgreSQL, publishes, waits for the acks and
#    acknowledges the subscription; the position is polled every 5 ms).
#    Each run starts on the same broker: the stream of the run before is
#    deleted (bench/relay/drop_stream.c: its messages, and the message ids
#    it keeps for duplicate detection), and nats-server is idle
#    (nats_settle): the files and the garbage of the run before are its own
#    work, not the next run's.  The plain publisher goes first in odd
#    rounds, the relay in even ones, and the plain publisher in the last.
#    The ratio relay/plain is the figure
#    (goal: at least 0.8, and at least 30,000 events/s).  For reference,
#    the time plain_publish took to read the events from PostgreSQL (one
#    query, in the relay's columns): the part of the relay's work the
#    plain publisher does not do.
# 2. Latency from COMMIT to the event coming out of the stream (a
#    JetStream push consumer: the stream delivers only what it stored, so
#    this bounds commit-to-ack from above), SAMPLES samples under the load
#    of 1, then SAMPLES idle once the load stops: p50 and p99; beside it,
#    commit to the event's NOTIFY on the default channel, which is what
#    wakes the relay.
# 3. Webhook throughput to bench/relay/webhook_sink.c (HTTP/1.1 keep-alive,
#    answers 200 at once), HOOK_EVENTS of the same events, idle: one event
#    per request, then --parallel PARALLEL (one event per request, that many
#    at once; the ratio to one at a time is the figure), then --batch 100.
#
# Prints a Markdown report, also written to bench/results/relay-DATE.md.
# Usage: bash bench/relay.sh      (as root; ~4 minutes on 2 cores)
# Environment: EVENTS (200000), LOAD_RATE (200 transactions/s),
# MAX_IN_FLIGHT (16384), SAMPLES (1000), HOOK_EVENTS (20000), PARALLEL (8),
# ROUNDS (5: rounds of both, each on the same events; the median ratio is
# the figure), RELAY_OPTS
# (more options for the JetStream relay, e.g. "--page 10000").
# shellcheck disable=SC2154  # the work directories are set by printf -v
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"
# shellcheck source=test/helpers/relay.sh
source "$top/test/helpers/relay.sh"

EVENTS="${EVENTS:-200000}"
LOAD_RATE="${LOAD_RATE:-200}"
MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-16384}"
SAMPLES="${SAMPLES:-1000}"
HOOK_EVENTS="${HOOK_EVENTS:-20000}"
PARALLEL="${PARALLEL:-8}"
ROUNDS="${ROUNDS:-5}"

prepare
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
export PGDATABASE=postgres
q "CREATE EXTENSION emissions"
require_delivery
relay_workdir work
nats_start "$work"
url="$(nats_url "$work")"
conninfo="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
for prog in plain_publish latency drop_stream; do
	# shellcheck disable=SC2046  # pkg-config prints several flags
	cc -Wall -Werror -O2 -I"$(pg_config --includedir)" \
		$(pkg-config --cflags libnats 2>/dev/null) "$top/bench/relay/$prog.c" \
		-L"$(pg_config --libdir)" -lpq \
		$(pkg-config --libs libnats 2>/dev/null || echo -lnats) \
		-o "$work/$prog"
done
cc -Wall -Werror -O2 "$top/bench/relay/webhook_sink.c" -o "$work/webhook_sink"

# Seconds since the epoch, with nanoseconds.
now() {
	date +%s.%N
}

# Wait (10 s at most) until nats-server has been idle for 0.3 s: less than
# 10 ms of CPU time used in it.  It writes a run's messages to its files
# and collects its garbage after the run's last answer; without this, that
# work would land in the next run's time, whichever publisher it times.
nats_settle() {
	local pid ticks last _
	pid="$(cat "$work/nats.pid")"
	last=-1000
	for _ in $(seq 1 33); do
		ticks="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
		[ $((ticks - last)) -lt 1 ] && return 0
		last="$ticks"
		sleep 0.3
	done
}

# Wait until subscription $1's position reaches $2 (polling every 5 ms).
# Each poll commits: one transaction for the whole wait would hold back
# the xmin horizon for the run, and the dead rows the delivery worker
# leaves meanwhile (the load's) would pile up in its tables and slow it,
# during the relay's runs only.
wait_position() {
	q "DO \$\$ BEGIN
	     WHILE emissions_ack('$1', 0) < $2 LOOP
	       COMMIT;
	       PERFORM pg_sleep(0.005);
	     END LOOP;
	   END \$\$" >/dev/null
}

# The time (seconds since the epoch) in the first line of log file $1 that
# says the relay started relaying: it has connected to both sides by then,
# as plain_publish has when its clock starts.
relay_started() {
	local stamp
	stamp="$(grep -m 1 'relaying subscription' "$1" | cut -d ' ' -f 1-2)"
	date -u -d "$stamp" +%s.%N
}

# p50 and p99 in milliseconds of the microsecond figures in column $2 of
# file $1.
percentiles() {
	python3 -c 'import sys
v = sorted(int(l.split()[int(sys.argv[2]) - 1]) for l in open(sys.argv[1]))
p = lambda q: v[min(len(v) - 1, int(q * len(v)))] / 1000.0
print("%.2f %.2f" % (p(0.50), p(0.99)))' "$1" "$2"
}

# 1. The backlog, and the load.
first_id="$(q "SELECT COALESCE(max(last_event_id), 0) FROM emissions_stats")"
echo "# committing $EVENTS events" >&2
for _ in $(seq 1 $((EVENTS / 10000))); do
	q "BEGIN; SELECT emissions_start();
	   SELECT count(emissions_emit('order.created', jsonb_build_object(
	       'order_id', g, 'customer', 'c-' || (g % 1000), 'amount', 12.5,
	       'note', repeat('x', 40)))) FROM generate_series(1, 10000) AS g;
	   COMMIT" >/dev/null
done
q "SELECT emissions_wait_delivered('120s')" >/dev/null
# The backlog's own aftermath (autovacuum of the tables it filled, the
# checkpoint it brings on) is done now, not in the first round's time.
q "VACUUM ANALYZE" >/dev/null
q "CHECKPOINT" >/dev/null
last_id="$(q "SELECT max(id) FROM emissions_events($first_id, 2147483647)")"
events=$((last_id - first_id))
q "SELECT emissions_subscribe('bench_hook', $first_id),
	      emissions_subscribe('bench_parallel', $first_id),
	      emissions_subscribe('bench_batch', $first_id)" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
	q "SELECT emissions_subscribe('bench_relay_$round', $first_id)" >/dev/null
done
rows=""
ratios=""
relay_rates=""

cat >"$work/load.sql" <<'SQL'
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('order.paid', jsonb_build_object('n', g, 'note', repeat('y', 40)))) FROM generate_series(1, 10) AS g;
END;
SQL
"$PGBIN/pgbench" -n -c 2 -j 2 -R "$LOAD_RATE" -T 3600 -f "$work/load.sql" \
	>"$work/pgbench.out" 2>&1 &
load_pid=$!
register_pid "$load_pid"
sleep 2

# One run of the plain publisher (its figures into plain_events, plain_s
# and read_s), its stream deleted afterwards.
plain_run() {
	nats_settle
	echo "# round $round: plain libnats publisher" >&2
	read -r plain_events plain_s read_s < <("$work/plain_publish" \
		"$conninfo" "$url" "plain$round" "$first_id" "$events" \
		"$MAX_IN_FLIGHT")
	"$work/drop_stream" "$url" "PLAIN$round"
}

# One run of the relay on subscription bench_relay_N (its time into
# relay_s); stopped and its stream deleted afterwards unless $1 is "keep"
# (the last round's, for the latency).
relay_run() {
	nats_settle
	echo "# round $round: emissions_relay" >&2
	# shellcheck disable=SC2086  # RELAY_OPTS holds several options
	emissions_relay -d "$conninfo" -s "bench_relay_$round" \
		--to "$url/relay$round" --create-stream \
		--max-in-flight "$MAX_IN_FLIGHT" ${RELAY_OPTS:+$RELAY_OPTS} \
		2>>"$work/relay$round.err" &
	relay_pid=$!
	register_pid "$relay_pid"
	wait_position "bench_relay_$round" "$last_id"
	relay_s="$(calc '%.3f' "$(now) - $(relay_started "$work/relay$round.err")")"
	if [ "${1:-}" != keep ]; then
		kill -TERM "$relay_pid"
		wait "$relay_pid" || true
		"$work/drop_stream" "$url" "RELAY$round"
	fi
}

# The rounds: the plain publisher first in odd rounds, the relay first in
# even ones (whatever drifts during a round weighs on both alike), and the
# plain publisher first in the last, whose relay is left running.
for round in $(seq 1 "$ROUNDS"); do
	if [ "$round" -eq "$ROUNDS" ]; then
		plain_run
		relay_run keep
	elif [ $((round % 2)) -eq 1 ]; then
		plain_run
		relay_run
	else
		relay_run
		plain_run
	fi
	plain_rate="$(calc '%.0f' "$plain_events / $plain_s")"
	read_rate="$(calc '%.0f' "$plain_events / $read_s")"
	relay_rate="$(calc '%.0f' "$events / $relay_s")"
	ratio="$(calc '%.2f' "$relay_rate / $plain_rate")"
	rows+="| $round | $plain_rate | $relay_rate | **$ratio** | $read_rate |"$'\n'
	ratios+="$ratio"$'\n'
	relay_rates+="$relay_rate"$'\n'
done
ratio="$(printf '%s' "$ratios" | median)"
relay_rate="$(printf '%s' "$relay_rates" | median)"

# 2. Latency under load, then idle.
echo "# latency under load" >&2
"$work/latency" "$conninfo" "$url" "relay$ROUNDS" "$SAMPLES" 2000 \
	>"$work/lat_load"
read -r load_p50 load_p99 < <(percentiles "$work/lat_load" 2)
read -r load_n50 load_n99 < <(percentiles "$work/lat_load" 1)
kill "$load_pid"
wait "$load_pid" 2>/dev/null || true
sleep 2
echo "# latency idle" >&2
"$work/latency" "$conninfo" "$url" "relay$ROUNDS" "$SAMPLES" 2000 \
	>"$work/lat_idle"
read -r idle_p50 idle_p99 < <(percentiles "$work/lat_idle" 2)
read -r idle_n50 idle_n99 < <(percentiles "$work/lat_idle" 1)
kill -TERM "$relay_pid"
wait "$relay_pid" || true

# 3. Webhooks.
"$work/webhook_sink" "$work/sink.port" &
register_pid $!
wait_listening "$(sleep 0.2; cat "$work/sink.port")"
hook_url="http://127.0.0.1:$(cat "$work/sink.port")/hook"
hook_last=$((first_id + HOOK_EVENTS))
# Time a webhook relay (subscription $1, extra options) over HOOK_EVENTS.
hook_run() {
	local sub="$1" pid start
	shift
	start="$(now)"
	emissions_relay -d "$conninfo" -s "$sub" --to "$hook_url" "$@" \
		2>>"$work/relay.err" &
	pid=$!
	register_pid "$pid"
	wait_position "$sub" "$hook_last"
	calc '%.0f' "$HOOK_EVENTS / ($(now) - $start)"
	kill -TERM "$pid"
	wait "$pid" || true
}
echo "# webhook, one event per request" >&2
hook_rate="$(hook_run bench_hook)"
echo "# webhook, one event per request, --parallel $PARALLEL" >&2
parallel_rate="$(hook_run bench_parallel --parallel "$PARALLEL")"
echo "# webhook, --batch 100" >&2
batch_rate="$(hook_run bench_batch --batch 100)"

report="$(report_file relay)"
{
	echo "# emissions_relay: JetStream and webhooks"
	echo
	echo "$(environment_line); nats-server $(nats-server --version | awk '{print $2}')," \
		"file storage; libnats $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null || echo '?')"
	echo
	echo "## Into JetStream, under producer load (pgbench -R $LOAD_RATE: transactions/s of 10 events)"
	echo
	echo "$events events a round; events/s:"
	echo
	echo "| round | plain libnats (js_PublishAsync, events in memory) | emissions_relay (read, publish, confirmed, acked) | relay / plain | for reference: reading them from PostgreSQL (one query) |"
	echo "|---|---:|---:|---:|---:|"
	printf '%s' "$rows"
	echo
	echo "median relay / plain: **$ratio** (goal >= 0.8: $(verdict "$ratio" '>=' 0.8));" \
		"median relay $relay_rate events/s (goal >= 30000: $(verdict "$relay_rate" '>=' 30000));" \
		"max in flight $MAX_IN_FLIGHT${RELAY_OPTS:+; relay options $RELAY_OPTS}"
	echo
	echo "## Latency, COMMIT to the event coming out of the stream ($SAMPLES samples each)"
	echo
	echo "| | to the stream p50 ms | p99 ms | to LISTEN (reference) p50 ms | p99 ms |"
	echo "|---|---:|---:|---:|---:|"
	echo "| idle | $idle_p50 | $idle_p99 | $idle_n50 | $idle_n99 |"
	echo "| under load | $load_p50 | $load_p99 | $load_n50 | $load_n99 |"
	echo
	echo "The relay's own share, p50: $(calc '%.2f' "$idle_p50 - $idle_n50") ms idle," \
		"$(calc '%.2f' "$load_p50 - $load_n50") ms under load (the rest is the" \
		"delivery to LISTEN, which wakes the relay)."

	echo
	echo "## Webhook to a local keep-alive receiver ($HOOK_EVENTS events, idle)"
	echo
	echo "| | events/s |"
	echo "|---|---:|"
	echo "| one event per request | $hook_rate |"
	echo "| one event per request, --parallel $PARALLEL | $parallel_rate |"
	echo "| --batch 100 | $batch_rate |"
	echo
	echo "parallel / one at a time: **$(calc '%.1f' "$parallel_rate / $hook_rate")**;" \
		"batched / per event: $(calc '%.1f' "$batch_rate / $hook_rate")"
} | tee "$report"
