#!/usr/bin/env bash
# test/check_versions.sh: what emissions shows differently on each server.
#
# The suite runs on the PostgreSQL version PG_MAJOR names (test/lib.sh).
# From 17 on, pg_stat_activity.wait_event names what the launcher, a
# delivery worker and a backend in emissions_wait_delivered() wait for
# (EmissionsLauncherMain, EmissionsWorkerMain, EmissionsWaitDelivered, all
# of wait_event_type "Extension"); before 17 each shows the generic
# "Extension".  On 18 the module declares its name and version, the
# extension's default_version, as pg_get_loaded_modules() shows; older
# servers have no such function, and that check is skipped there.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

sql() {
	psql -X -At -v ON_ERROR_STOP=1 "$@"
}

# Print the wait event 17 and later report for NAME, "Extension" before.
wait_event_for() {
	if [ "$PG_MAJOR" -ge 17 ]; then
		echo "Extension $1"
	else
		echo "Extension Extension"
	fi
}

# Print "TYPE EVENT" of a process matching the WHERE clause $1 while it
# waits, polling up to 10 s for the event $2 (a process also waits on other
# things now and then).
wait_event_of() {
	local i got=""
	for i in $(seq 1 100); do
		got="$(sql -c "SELECT wait_event_type || ' ' || wait_event
			FROM pg_stat_activity WHERE $1 AND wait_event IS NOT NULL
			ORDER BY wait_event = '${2#* }' DESC LIMIT 1")"
		[ "$got" = "$2" ] && break
		sleep 0.1
	done
	echo "$got"
}

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16"
export PGDATABASE=postgres

check_eq "the server is PostgreSQL $PG_MAJOR" "$PG_MAJOR" \
	"$(sql -c "SELECT current_setting('server_version_num')::int / 10000")"

want="$(wait_event_for EmissionsLauncherMain)"
check_eq "the launcher waits on $want" "$want" \
	"$(wait_event_of "backend_type = 'emissions launcher'" "$want")"

sql -q -c 'CREATE EXTENSION emissions' -c "
	CREATE FUNCTION slow_handler(e jsonb) RETURNS void LANGUAGE sql
		AS \$\$ SELECT pg_sleep(3) \$\$" \
	-c "SELECT emissions_add_adapter('slow', 'function', 'slow_handler',
		'versions.slow')" >/dev/null
want="$(wait_event_for EmissionsWorkerMain)"
check_eq "a delivery worker waits on $want" "$want" \
	"$(wait_event_of "backend_type = 'emissions delivery'" "$want")"

# The handler keeps the worker 3 s on this event, so the wait lasts.
sql -c "SELECT emissions_start(), emissions_emit('versions.slow')" >/dev/null
PGAPPNAME=versions_waiter sql -c "SELECT emissions_wait_delivered('60s')" \
	>"$CLUSTER/waited.out" 2>&1 &
waiter=$!
want="$(wait_event_for EmissionsWaitDelivered)"
check_eq "emissions_wait_delivered() waits on $want" "$want" \
	"$(wait_event_of "application_name = 'versions_waiter'" "$want")"
status=0
wait "$waiter" || status=$?
check_eq "and returns true once the event is delivered" "0 t" \
	"$status $(cat "$CLUSTER/waited.out")"

version="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" \
	"$top/emissions.control")"
if [ "$PG_MAJOR" -ge 18 ]; then
	check_eq "the module declares its name and version $version" \
		"emissions $version" "$(sql -c "SELECT module_name || ' ' || version
			FROM pg_get_loaded_modules() WHERE file_name = 'emissions.so'")"
else
	ok "the module declares its name and version # SKIP pg_get_loaded_modules() is new in 18"
fi

cluster_stop "$CLUSTER"
done_testing
