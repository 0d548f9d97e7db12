#!/usr/bin/env bash
# test/check_wait.sh: emissions_wait_delivered() wakes when the worker
# commits a pass, not at its next look.
#
# A backend in emissions_wait_delivered() sleeps on a condition variable
# that the worker broadcasts after each pass it commits; it looks at the
# outbox again on its own only once a second.  Each sample holds the worker
# back (a prepared transaction keeps a SHARE lock on the event log, which
# the worker must write to deliver), commits an event, starts a waiter,
# lets it sleep a random 300-600 ms, then releases the worker (ROLLBACK
# PREPARED) and measures, on the server's clock, from the release to the
# waiter's return.  Woken by the broadcast, that is the worker's delivery
# time, a few milliseconds; woken only by its own looks, 400 ms or more.
# Every one of ten samples must be under 300 ms and their median under
# 100 ms, and each wait must return true (delivered).  A waiter whose
# timeout passes first returns false: checked with the worker held back.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16" "max_prepared_transactions = 4" \
	"emissions.poll_interval = '60s'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'
for _ in $(seq 1 100); do
	[ "$(psql -X -At -c "SELECT worker_pid IS NOT NULL FROM emissions_stats")" = t ] &&
		break
	sleep 0.1
done

# Hold the worker back: it cannot write the event log until released.
hold() {
	psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" \
		-c "LOCK TABLE emissions_log IN SHARE MODE" \
		-c "PREPARE TRANSACTION 'wait_hold'"
}

emit() {
	psql -X -q -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_start(), emissions_emit('wait.sample', '{\"n\": $1}')" \
		>/dev/null
}

hold
emit 0
check_eq "held back, the wait times out and returns false" \
	"f" "$(psql -X -At -c "SELECT emissions_wait_delivered('200ms')")"
psql -X -q -c "ROLLBACK PREPARED 'wait_hold'"
check_eq "released, the wait returns true" \
	"t" "$(psql -X -At -c "SELECT emissions_wait_delivered('30s')")"

out="$CLUSTER/waiter.out"
samples=()
results=""
for i in $(seq 1 10); do
	hold
	emit "$i"
	psql -X -At -c "SELECT emissions_wait_delivered('30s')" \
		-c "SELECT clock_timestamp()" >"$out" 2>&1 &
	waiter=$!
	sleep "0.$((300 + RANDOM % 300))"
	t0="$(psql -X -At -c "SELECT clock_timestamp()" \
		-c "ROLLBACK PREPARED 'wait_hold'" | sed -n 1p)"
	wait "$waiter" || true
	results+="$(head -n 1 "$out")"
	samples+=("$(psql -X -At -c "SELECT round(extract(epoch FROM
		'$(tail -n 1 "$out")'::timestamptz - '$t0'::timestamptz) * 1000)")")
done
comment "milliseconds from release to return: ${samples[*]}"

check_eq "every wait returned true" "tttttttttt" "$results"
slow="$(printf '%s\n' "${samples[@]}" | awk '$1 >= 300' | wc -l)"
check_eq "every wait returned within 300 ms of the worker's release" 0 "$slow"
median="$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 5p)"
check "the median wait returned within 100 ms ($median ms)" \
	test "$median" -lt 100

done_testing
