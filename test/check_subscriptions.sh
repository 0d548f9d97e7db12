#!/usr/bin/env bash
# test/check_subscriptions.sh: subscriptions hold delivered events past
# emissions.retention until they acknowledge them, up to
# emissions.max_retention; then the events go all the same, the
# subscription is overrun, the loss is logged, and emissions_read fails
# naming the lost ids until the gap is acknowledged.
#
# With emissions.retention at 2 seconds (a log partition is closed every
# second) and autovacuum off:
#   1. held: an event delivered before the subscription is gone after a few
#      seconds, as without subscriptions; the one after it is still readable
#      long past the retention, through emissions_event and emissions_read;
#      once acknowledged, it goes.  Subscribing after an id whose next
#      events are no longer kept is refused (55000); after 0, it starts at
#      the oldest event kept.
#   2. overrun: with emissions.max_retention at 3 seconds, an event a
#      subscription never acknowledges is removed anyway: the server log
#      names the subscription and the lost ids, the view says overrun,
#      emissions_read fails with 55000 naming the ids; acknowledging the gap
#      ends it, and the subscription reads what came after.
#   3. max_retention = 0: no limit, the event stays.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "autovacuum = off" \
	"emissions.retention = '2s'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'

# Print the value of a query run after everything committed is delivered.
delivered_value() {
	psql -X -At -c "SELECT emissions_wait_delivered('60s')" -c "$1" |
		tail -n 1
}

# Emit one event of TYPE and print its id once delivered.
emit_id() {
	psql -X -q -c "SELECT emissions_start(), emissions_emit('$1')" >/dev/null
	delivered_value "SELECT id FROM emissions_events(0, 1000000)
		WHERE type = '$1'"
}

# Whether the event ID is still kept (1) or not (0).
kept() {
	psql -X -At -c "SELECT count(*) FROM emissions_event($1)"
}

# Wait up to 20 s until event ID is gone; true if it went.
wait_gone() {
	local i
	for i in $(seq 1 200); do
		[ "$(kept "$1")" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# Set emissions.max_retention and have the worker read it.
set_max_retention() {
	psql -X -q -v ON_ERROR_STOP=1 \
		-c "ALTER SYSTEM SET emissions.max_retention = '$1'" \
		-c "SELECT pg_reload_conf()" >/dev/null
}

#
# 1. Held until acknowledged.
#
before="$(emit_id held.before)"
before2="$(emit_id held.before2)"
sleep 2.5
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT emissions_subscribe('held')" >/dev/null
after="$(emit_id held.after)"
check "the events before the subscription go after the retention" \
	wait_gone "${before2:-0}"
sleep 5
check_eq "the unacknowledged event is kept past the retention" 1 \
	"$(kept "${after:-0}")"
check_eq "and emissions_read returns it" "held.after" \
	"$(psql -X -At -c "SELECT type FROM emissions_read('held')")"
check_eq "the view shows it behind" "1|active" \
	"$(psql -X -At -c "SELECT events_behind, state FROM emissions_subscriptions
		WHERE name = 'held'")"
check_eq "subscribing after an id whose next events are gone is refused" \
	55000 "$(psql -X -At -v VERBOSITY=sqlstate \
		-c "SELECT emissions_subscribe('late', ${before:-0})" 2>&1 |
		sed 's/^ERROR: *//')"
check_eq "subscribing after 0 starts at the oldest event kept" \
	"0 held.after" "$(psql -X -At -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_subscribe('oldest', 0)" \
		-c "SELECT type FROM emissions_read('oldest', 1)" | paste -sd ' ')"
psql -X -q -c "SELECT emissions_unsubscribe('oldest')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 \
	-c "SELECT emissions_ack('held', ${after:-0})" >/dev/null
check "once acknowledged, it goes" wait_gone "${after:-0}"
psql -X -q -c "SELECT emissions_unsubscribe('held')" >/dev/null

#
# 2. Overrun after emissions.max_retention.
#
set_max_retention 3s
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT emissions_subscribe('slow')" >/dev/null
lost="$(emit_id slow.lost)"
check "an event never acknowledged goes after max_retention" \
	wait_gone "${lost:-0}"
state="$(psql -X -At -c "SELECT state FROM emissions_subscriptions
	WHERE name = 'slow'")"
check_eq "the subscription is overrun" overrun "$state"
logged="$(grep -c "subscription \"slow\" lost events ${lost:-x} to" \
	"$CLUSTER/server.log" || true)"
check "the server log names it and the ids lost ($logged)" \
	test "$logged" -ge 1
err="$(psql -X -At -v VERBOSITY=verbose \
	-c "SELECT * FROM emissions_read('slow')" 2>&1 || true)"
check "emissions_read fails with 55000" grep -q "ERROR:  55000" <<<"$err"
check "naming the lost ids" \
	grep -q "subscription \"slow\" lost events ${lost:-x} to" <<<"$err"
check "and how to go on" grep -q "HINT:  Acknowledge the gap" <<<"$err"
[ -n "$err" ] && comment "$err"
lost_to="$(psql -X -At -c "SELECT lost_to FROM emissions_subscription_positions
	WHERE name = 'slow'")"
next="$(emit_id slow.next)"
psql -X -q -v ON_ERROR_STOP=1 \
	-c "SELECT emissions_ack('slow', ${lost_to:-0})" >/dev/null
check_eq "acknowledging the gap ends the overrun" active \
	"$(psql -X -At -c "SELECT state FROM emissions_subscriptions
		WHERE name = 'slow'")"
check_eq "and the subscription reads what came after" "${next:-x}|slow.next" \
	"$(psql -X -At -c "SELECT id, type FROM emissions_read('slow')")"
psql -X -q -c "SELECT emissions_unsubscribe('slow')" >/dev/null

#
# 3. max_retention = 0: no limit.
#
set_max_retention 0
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT emissions_subscribe('forever')" \
	>/dev/null
forever="$(emit_id forever.kept)"
sleep 8
check_eq "with max_retention = 0 an unacknowledged event stays" 1 \
	"$(kept "${forever:-0}")"
check_eq "and the subscription is not overrun" active \
	"$(psql -X -At -c "SELECT state FROM emissions_subscriptions
		WHERE name = 'forever'")"

cluster_stop "$CLUSTER"
done_testing
