#!/usr/bin/env bash
# test/check_wakeup.sh: a committing transaction wakes the delivery worker;
# emissions.poll_interval is only the fallback.
#
# With emissions.poll_interval at a minute, events are still delivered
# within a few milliseconds of their commit: the commit sets the worker's
# latch.  The same holds for events committed by COMMIT PREPARED, which no
# producing backend announces.  Each latency runs from the server's clock
# read just before COMMIT (or COMMIT PREPARED) to the event's delivered_at,
# both the server's.  The worker also looks at its storage once a second,
# so a broken wake-up would deliver each event up to a second late: every
# one of ten samples, taken at random moments, must be under 400 ms (a
# broken wake-up passes that with a chance of 0.4^10, 1 in 10,000), and
# their median under 200 ms; an event not delivered within 5 s fails.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "max_prepared_transactions = 4" \
	"emissions.poll_interval = '60s'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'
for _ in $(seq 1 100); do
	[ "$(psql -X -At -c "SELECT worker_pid IS NOT NULL FROM emissions_stats")" = t ] &&
		break
	sleep 0.1
done

# Milliseconds from the commit to the delivery of ten events of type TYPE,
# in the order taken, or "timeout" for one not delivered within 5 s: latencies
# TYPE PREPARED (PREPARED: "yes" to commit each with COMMIT PREPARED).  Each
# event carries its number, {"n": I}; the pauses between them are random, so
# that the samples do not fall in step with the worker's storage checks.
latencies() {
	local type="$1" prepared="$2" i t0 out
	for i in $(seq 1 10); do
		local run=(-c "BEGIN" -c "SELECT emissions_start(),
			emissions_emit('$type', '{\"n\": $i}')")
		if [ "$prepared" = yes ]; then
			run+=(-c "PREPARE TRANSACTION 'wake'" -c "SELECT clock_timestamp()"
				-c "COMMIT PREPARED 'wake'")
		else
			run+=(-c "SELECT clock_timestamp()" -c "COMMIT")
		fi
		t0="$(psql -X -q -At -v ON_ERROR_STOP=1 "${run[@]}" | tail -n 1)"
		out="$(psql -X -At -v ON_ERROR_STOP=1 \
			-c "SELECT emissions_wait_delivered('5s')" \
			-c "SELECT round(extract(epoch FROM delivered_at
					- '$t0'::timestamptz) * 1000)
				  FROM emissions_events(0, 1000)
				 WHERE type = '$type' AND payload->>'n' = '$i'" |
			tr '\n' ' ')" || true
		if [[ "$out" =~ ^t\ (-?[0-9]+)\ $ ]]; then
			echo "${BASH_REMATCH[1]}"
		else
			echo timeout
		fi
		sleep "0.$((RANDOM % 5 + 1))"
	done | tr '\n' ' '
}

# Check the samples MS of what DESC names: each a number under 400, their
# median under 200.
check_latencies() {
	local desc="$1" ms="$2" median
	comment "$desc: $ms ms"
	check "$desc wakes the worker: every one of ten deliveries under 400 ms" \
		awk '{ for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9]+$/ || $i >= 400)
			exit 1; exit NF != 10 }' <<<"$ms"
	median="$(tr ' ' '\n' <<<"$ms" | grep -v '^$' | sort -n | sed -n 5p)"
	check "$desc: median delivery ${median:-?} ms < 200 ms" \
		awk -v m="${median:-x}" 'BEGIN { exit !(m ~ /^-?[0-9]+$/ && m < 200) }'
}

check_latencies "a commit" "$(latencies wake.commit no)"
check_latencies "COMMIT PREPARED" "$(latencies wake.prepared yes)"

check_eq "all twenty events delivered" "10 10" "$(psql -X -At -F ' ' -c "
	SELECT count(*) FILTER (WHERE type = 'wake.commit'),
	       count(*) FILTER (WHERE type = 'wake.prepared')
	  FROM emissions_events(0, 100)")"

cluster_stop "$CLUSTER"
done_testing
