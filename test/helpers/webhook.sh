# test/helpers/webhook.sh: helpers of the webhook relay tests
# (test/check_relay_webhook*.sh).
# shellcheck shell=bash
# shellcheck disable=SC2154  # relay and the work directories come from the caller
# shellcheck disable=SC2034  # relay_pid and relay_status are the caller's
#
# Sourced after test/helpers/relay.sh, by a script that sets relay to the
# emissions_relay to run and has a cluster with the events (PGDATABASE
# set): receivers in directories of their own, relays in the background
# to them, and checks of what a receiver logged against the events.

# Start a receiver in a directory of its own (extra args: its options);
# the directory's name goes to var $1.
receiver() {
	local var="$1" dir
	shift
	relay_workdir dir
	receiver_start "$dir" "$@"
	printf -v "$var" '%s' "$dir"
}

# Run the relay in the background to the receiver of DIR: relay_bg DIR
# SUBSCRIPTION OPTION...; its PID goes to var relay_pid.
relay_bg() {
	local dir="$1" sub="$2"
	shift 2
	"$relay" -d "dbname=postgres" -s "$sub" --to "$(cat "$dir/hook.url")" \
		"$@" 2>>"$dir/relay.err" &
	relay_pid=$!
	register_pid "$relay_pid"
}

# Stop the relay with SIGTERM; its exit status goes to var relay_status.
relay_stop() {
	relay_status=0
	kill -TERM "$relay_pid"
	wait "$relay_pid" || relay_status=$?
}

# Check the receiver log of DIR (python3 code $2 gets the records as
# "records", the delivered events as "events", {id: (type, payload)});
# the code sets "problems", a list of what is wrong.
check_log() {
	local desc="$1" dir="$2" code="$3"
	psql -X -At -F $'\t' -c "SELECT id, type, payload
		FROM emissions_events(0, 2147483647) ORDER BY id" >"$dir/db.tsv"
	if python3 - "$dir/hook.log" "$dir/db.tsv" "$code" >"$dir/check.out" <<'PY'
import hashlib, hmac, json, re, sys
log, db, code = sys.argv[1:]
records = [json.loads(l) for l in open(log)]
events = {}
for line in open(db):
    i, t, p = line.rstrip("\n").split("\t", 2)
    events[int(i)] = (t, json.loads(p))
problems = []
exec(code)
for p in problems[:10]:
    print(p)
sys.exit(1 if problems else 0)
PY
	then
		ok "$desc"
	else
		not_ok "$desc"
		comment "$(cat "$dir/check.out")"
	fi
}
