#!/usr/bin/env bash
# test/check_wakeup.sh: a committing transaction wakes the delivery worker;
# emissions.poll_interval is only the fallback.
#
# With emissions.poll_interval at a minute, events are still delivered
# within a few milliseconds of their commit: the commit sets the worker's
# latch.  The same holds for events committed by COMMIT PREPARED, which no
# producing backend announces.  (The worker also looks at its storage once
# a second, so a broken wake-up would show as deliveries taking about half
# a second: the check takes the median of several.)
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

# Milliseconds from just after the commit to the delivery, for each of
# five events, sorted; the arguments are the statements that commit one.
latencies() {
	local i stmt args=()
	for stmt in "$@"; do
		args+=(-c "$stmt")
	done
	for i in 1 2 3 4 5; do
		psql -X -q -v ON_ERROR_STOP=1 "${args[@]}" >/dev/null
		psql -X -At -c "SELECT emissions_wait_delivered('5s'),
			round(extract(epoch FROM clock_timestamp() - statement_timestamp())
				  * 1000)" | sed 's/^t|//'
		sleep 0.3
	done | sort -n | tr '\n' ' '
}

ms="$(latencies "SELECT emissions_start(), emissions_emit('wake.commit')")"
comment "after COMMIT: $ms ms"
median="$(awk '{ print $3 }' <<<"$ms")"
check "a commit wakes the worker: median delivery ${median:-?} ms < 200 ms" \
	test "${median:-9999}" -lt 200

ms="$(latencies "BEGIN" \
	"SELECT emissions_start(), emissions_emit('wake.prepared')" \
	"PREPARE TRANSACTION 'wake'" "COMMIT PREPARED 'wake'")"
comment "after COMMIT PREPARED: $ms ms"
median="$(awk '{ print $3 }' <<<"$ms")"
check "COMMIT PREPARED wakes the worker: median ${median:-?} ms < 200 ms" \
	test "${median:-9999}" -lt 200

check_eq "all ten events delivered" "5 5" "$(psql -X -At -F ' ' -c "
	SELECT count(*) FILTER (WHERE type = 'wake.commit'),
	       count(*) FILTER (WHERE type = 'wake.prepared')
	  FROM emissions_events(0, 100)")"

cluster_stop "$CLUSTER"
done_testing
