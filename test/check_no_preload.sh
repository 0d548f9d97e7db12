#!/usr/bin/env bash
# test/check_no_preload.sh: emissions without shared_preload_libraries.
#
# Without the preload there is no shared memory and no delivery worker.  The
# counters then fail with a clear error, while events still persist safely
# and the user is warned at commit time that delivery is off.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

# shellcheck disable=SC2119
cluster_start
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'

out="$(psql -X -v ON_ERROR_STOP=1 -c '\set VERBOSITY verbose' \
	-c 'SELECT * FROM emissions_stats' 2>&1)" && status=0 || status=$?
comment "$out"
check "emissions_stats fails without the preload" test "$status" -ne 0
check "with SQLSTATE 55000" grep -q 'ERROR:  55000:' <<<"$out"
check "and a message naming shared_preload_libraries" \
	grep -q 'shared_preload_libraries' <<<"$out"

out="$(psql -X -v ON_ERROR_STOP=1 -c 'BEGIN' -c 'SELECT emissions_start()' \
	-c "SELECT emissions_emit('nopreload.x')" -c 'COMMIT' 2>&1)" &&
	status=0 || status=$?
comment "$out"
check_eq "a transaction that emits commits without the preload" 0 "$status"
check "with a WARNING" grep -q '^WARNING:' <<<"$out"
check "that names shared_preload_libraries" \
	grep -q 'shared_preload_libraries' <<<"$out"

check_eq "its event persists" 1 "$(psql -X -At -c \
	"SELECT count(*) FROM emissions_pending WHERE type = 'nopreload.x'" 2>&1)"

out="$(psql -X -v ON_ERROR_STOP=1 -c '\set VERBOSITY verbose' \
	-c "SELECT emissions_wait_delivered('1s')" 2>&1)" && status=0 || status=$?
comment "$out"
check "waiting for delivery fails at once: delivery is off" \
	grep -q 'ERROR:  55000: emissions delivery is off' <<<"$out"
check_eq "no delivery worker runs" 0 "$(psql -X -At -c \
	"SELECT count(*) FROM pg_stat_activity
	  WHERE backend_type LIKE 'emissions%'" 2>&1)"

cluster_stop "$CLUSTER"
done_testing
