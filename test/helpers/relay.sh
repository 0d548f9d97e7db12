# test/helpers/relay.sh: helpers of the relay tests (test/check_relay_*.sh).
# shellcheck shell=bash
# shellcheck disable=SC2154  # top and the cluster helpers come from test/lib.sh
#
# Sourced after test/lib.sh.  A throwaway nats-server (JetStream, file
# storage in a temp directory, a free port) and the webhook test receiver
# (test/helpers/webhook_receiver.py) run in the background; every process
# started here is registered and stopped by its PID on exit, then the
# clusters are cleaned up as lib.sh does.

helpers="$top/test/helpers"
RELAY_PIDS=()
RELAY_PIDFILES=()
RELAY_DIRS=()

# EXIT trap: stop the registered processes (and those whose PID files are
# registered), remove their directories, stop the clusters.
relay_cleanup() {
	local pid dir file
	for file in ${RELAY_PIDFILES[@]+"${RELAY_PIDFILES[@]}"}; do
		if [ -s "$file" ]; then kill -9 "$(cat "$file")" 2>/dev/null || true; fi
	done
	for pid in ${RELAY_PIDS[@]+"${RELAY_PIDS[@]}"}; do
		kill -9 "$pid" 2>/dev/null || true
	done
	for pid in ${RELAY_PIDS[@]+"${RELAY_PIDS[@]}"}; do
		wait "$pid" 2>/dev/null || true
	done
	RELAY_PIDS=()
	# RELAY_KEEP=1 keeps them, to look at the logs after a failure.
	for dir in ${RELAY_DIRS[@]+"${RELAY_DIRS[@]}"}; do
		if [ -n "${RELAY_KEEP:-}" ]; then echo "# kept $dir"; else rm -rf "$dir"; fi
	done
	RELAY_DIRS=()
	cleanup_clusters
}
trap relay_cleanup EXIT

# Register a background process for the clean-up.
register_pid() {
	RELAY_PIDS+=("$1")
}

# Register a PID file: the process it names is stopped on exit.
register_pidfile() {
	RELAY_PIDFILES+=("$1")
}

# Make a work directory, registered for removal, into var $1.
relay_workdir() {
	local made
	made="$(mktemp -d /tmp/emissions-relay.XXXXXX)"
	RELAY_DIRS+=("$made")
	printf -v "$1" '%s' "$made"
}

# Build the test helper programs into DIR.
build_helpers() {
	# shellcheck disable=SC2046  # pkg-config prints several flags
	cc -Wall -Werror -O2 $(pkg-config --cflags libnats 2>/dev/null) \
		"$helpers/stream_dump.c" \
		$(pkg-config --libs libnats 2>/dev/null || echo -lnats) \
		-o "$1/stream_dump"
}

# Print a TCP port nothing listens on (from a random start).
free_tcp_port() {
	local p=$((20000 + RANDOM % 20000))
	while grep -qi ":$(printf '%04X' "$p") [0-9A-F:]* 0A" \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p"
}

# Wait up to 20 s until something listens on TCP port $1.
wait_listening() {
	for _ in $(seq 1 200); do
		grep -qi ":$(printf '%04X' "$1") [0-9A-F:]* 0A" /proc/net/tcp \
			/proc/net/tcp6 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Start nats-server with JetStream, storing in DIR/js, on DIR/nats.port
# (chosen now, kept across restarts); its PID goes to DIR/nats.pid.  Extra
# args are nats-server options (--user, --pass...).
nats_start() {
	local dir="$1" port pid
	shift
	[ -f "$dir/nats.port" ] || free_tcp_port >"$dir/nats.port"
	port="$(cat "$dir/nats.port")"
	nats-server -js -sd "$dir/js" -a 127.0.0.1 -p "$port" "$@" \
		>>"$dir/nats.log" 2>&1 &
	pid=$!
	register_pid "$pid"
	echo "$pid" >"$dir/nats.pid"
	wait_listening "$port"
}

# Kill the nats-server of DIR with SIGKILL and wait for it.
nats_kill() {
	local pid
	pid="$(cat "$1/nats.pid")"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Print the NATS URL of the server of DIR.
nats_url() {
	echo "nats://127.0.0.1:$(cat "$1/nats.port")"
}

# Start the webhook receiver, logging to DIR/hook.log (extra args: its
# options); its URL goes to DIR/hook.url, its PID to DIR/hook.pid.
receiver_start() {
	local dir="$1" pid
	shift
	rm -f "$dir/hook.port"
	python3 "$helpers/webhook_receiver.py" --port-file "$dir/hook.port" \
		--log "$dir/hook.log" "$@" 2>>"$dir/hook.err" &
	pid=$!
	register_pid "$pid"
	echo "$pid" >"$dir/hook.pid"
	for _ in $(seq 1 100); do
		[ -s "$dir/hook.port" ] && break
		sleep 0.1
	done
	echo "http://127.0.0.1:$(cat "$dir/hook.port")/hook" >"$dir/hook.url"
}

# Stop the webhook receiver of DIR.
receiver_stop() {
	local pid
	pid="$(cat "$1/hook.pid")"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Run SQL in the cluster's postgres database, printing unaligned tuples.
sql() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1"
}

# Print the position of subscription $1.
sub_position() {
	sql "SELECT emissions_ack('$1', 0)"
}

# Print the last delivered event's id, once the worker has delivered what
# was committed so far.
last_delivered() {
	sql "SELECT emissions_wait_delivered('60s')" >/dev/null
	sql "SELECT COALESCE(max(id), 0) FROM emissions_events(0, 2147483647)"
}

# Wait up to $2 seconds (default 60) until subscription $1 has reached
# the last delivered event; false if it never does.
wait_caught_up() {
	local last
	last="$(last_delivered)"
	for _ in $(seq 1 $((${2:-60} * 10))); do
		[ "$(sub_position "$1")" -ge "$last" ] && return 0
		sleep 0.1
	done
	comment "subscription $1 at $(sub_position "$1"), last event $last"
	return 1
}

# Print the delivered events as "ID<TAB>TYPE<TAB>EMITTED_AT<TAB>PAYLOAD"
# lines in id order, emitted_at in its JSON form (as the envelope has it).
db_events() {
	psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -c "SET TimeZone = 'UTC'" \
		-c "SELECT id, type, to_json(emitted_at), payload
			FROM emissions_events(0, 2147483647) ORDER BY id"
}
