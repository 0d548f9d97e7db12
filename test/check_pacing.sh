#!/usr/bin/env bash
# test/check_pacing.sh: under a steady stream the delivery worker lets
# commits gather and delivers them in few passes; a slow stream is
# delivered at once, as on an idle system (src/pacing.c).
#
# emissions.coalesce_delay is set to 200 ms, far above any pass here, so
# that the counts do not depend on the machine's speed.  Every delivery
# transaction stamps its events with one delivered_at, so the distinct
# delivered_at values of a stream count the passes that delivered it.
#   - A stream of 1,500 single-event transactions committed back to back
#     (a procedure that commits after each emit, 0.5 ms apart) arrives far
#     faster than 2.5 events per 200 ms: it must be delivered in at most a
#     tenth as many passes as transactions (about one pass per 200 ms is
#     expected; a pass per commit, as without pacing, fails).  At that rate
#     a step of 200 ms gathers hundreds of events, far above the 4 that
#     stretch the pace: passes must then come up to 4 times 200 ms apart,
#     so at least one gap between two passes is 400 ms or more (a pace
#     that does not stretch keeps every gap near 200 ms).
#   - Events 150 ms apart (under 2.5 per 200 ms) must not be held back:
#     the median from emission to delivery stays under 50 ms (holding each
#     pass until 200 ms after the last would make it 100 ms or more).  The
#     rate the worker measures follows the last gaps between passes: at
#     100 ms apart, two passes that came 20 ms closer than that (a busy
#     machine) were enough to hold a few; at 150 ms a gap must shrink by
#     half.
#   - Every event of both streams is delivered exactly once.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "emissions.poll_interval = '60s'" \
	"emissions.coalesce_delay = '200ms'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION emissions;
-- N single-event transactions of type KIND, GAP seconds apart.
CREATE PROCEDURE emit_stream(kind text, n int, gap float8)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		PERFORM emissions_start();
		PERFORM emissions_emit(kind, jsonb_build_object('n', i));
		COMMIT;
		PERFORM pg_sleep(gap);
	END LOOP;
END $$;
SQL
for _ in $(seq 1 100); do
	[ "$(psql -X -At -c "SELECT worker_pid IS NOT NULL FROM emissions_stats")" = t ] &&
		break
	sleep 0.1
done

# Events of TYPE delivered, distinct delivered_at among them, and the
# median milliseconds from emitted_at to delivered_at, once all is delivered.
stream_figures() {
	psql -X -At -F ' ' -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_wait_delivered('60s')" \
		-c "SELECT count(*), count(DISTINCT delivered_at),
			       round(extract(epoch FROM percentile_disc(0.5) WITHIN GROUP
			             (ORDER BY delivered_at - emitted_at)) * 1000)
			  FROM emissions_events(0, 100000) WHERE type = '$1'" | tail -n 1
}

psql -X -q -v ON_ERROR_STOP=1 -c "CALL emit_stream('pace.fast', 1500, 0.0005)"
read -r events passes median <<<"$(stream_figures pace.fast)"
comment "fast stream: $events events in $passes passes, median $median ms"
check_eq "fast stream: every event delivered" 1500 "$events"
check "fast stream: at most one pass per ten transactions ($passes passes)" \
	test "$passes" -le 150
gap="$(psql -X -At -c "
	SELECT coalesce(round(extract(epoch FROM max(d - p)) * 1000), 0)
	  FROM (SELECT d, lag(d) OVER (ORDER BY d) AS p
	          FROM (SELECT DISTINCT delivered_at AS d
	                  FROM emissions_events(0, 100000)
	                 WHERE type = 'pace.fast') AS passes) AS gaps")"
comment "fast stream: longest gap between two passes $gap ms"
check "fast stream: the pace stretches beyond coalesce_delay ($gap ms >= 400 ms)" \
	test "$gap" -ge 400
check "fast stream: ... to at most 4 times coalesce_delay ($gap ms <= 1000 ms)" \
	test "$gap" -le 1000

sleep 1	# the rate the worker measured decays
psql -X -q -v ON_ERROR_STOP=1 -c "CALL emit_stream('pace.slow', 15, 0.15)"
read -r events passes median <<<"$(stream_figures pace.slow)"
comment "slow stream: $events events in $passes passes, median $median ms"
check_eq "slow stream: every event delivered" 15 "$events"
check "slow stream: not held back (median delivery $median ms < 50 ms)" \
	test "$median" -lt 50

check_eq "no event delivered twice" 0 "$(psql -X -At -c "
	SELECT count(*) FROM (SELECT type, payload FROM emissions_events(0, 100000)
	 GROUP BY 1, 2 HAVING count(*) > 1) AS d")"

cluster_stop "$CLUSTER"
done_testing
