#!/usr/bin/env bash
# test/check_failure_log.sh: the server log's line for a failed adapter
# delivery carries the failure's SQLSTATE, as the dead letter records it.
#
# A function adapter raises with SQLSTATE 22012 and may try once
# (max_attempts 1), so its delivery becomes a dead letter at once.  The
# worker's LOG line names the SQLSTATE in its text and carries it as the
# entry's error code (%e in log_line_prefix), and the dead letter records
# the same SQLSTATE.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16" "log_line_prefix = '%m [%p] %e '"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
	-c "CREATE EXTENSION emissions" \
	-c "CREATE FUNCTION failing(envelope jsonb) RETURNS void
		LANGUAGE plpgsql AS \$\$
		BEGIN RAISE division_by_zero USING MESSAGE = 'failing on purpose'; END \$\$" \
	-c "SELECT emissions_add_adapter('failing', 'function', 'failing',
		'fail.*', '{\"max_attempts\": 1}')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 \
	-c "SELECT emissions_start(), emissions_emit('fail.now')" >/dev/null

check_eq "the delivery becomes a dead letter with SQLSTATE 22012" \
	"t|22012" "$(psql -X -At -c "SELECT emissions_wait_delivered('30s')" \
		-c "SELECT sqlstate FROM emissions_dead_letters" | paste -sd '|')"
check "the log line names the SQLSTATE and has it as its error code" \
	grep -q '22012 LOG:  emissions adapter "failing" failed with SQLSTATE 22012: failing on purpose' \
	"$CLUSTER/server.log"

done_testing
