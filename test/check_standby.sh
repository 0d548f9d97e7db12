#!/usr/bin/env bash
# test/check_standby.sh: emissions on a streaming standby.
#
# Starts a primary with the library preloaded and the extension installed,
# clones it with pg_basebackup -R into a hot standby (preloaded too), and
# checks that emitting there fails cleanly with SQLSTATE 25006 (read-only
# SQL transaction) while read-only functions still answer.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

preload="shared_preload_libraries = 'emissions'"
cluster_start "$preload"
primary="$CLUSTER"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE EXTENSION emissions'

standby=""
cluster_dir standby
as_pg pg_basebackup -h "$primary" -p "$PGPORT" -U postgres -R \
	--checkpoint=fast -D "$standby/data"
cluster_launch "$standby" "$preload"
for _ in $(seq 1 100); do
	pg_isready -q -d postgres && break
	sleep 0.1
done

check_eq "the standby is in recovery" t \
	"$(psql -X -At -d postgres -c 'SELECT pg_is_in_recovery()' 2>&1)"

out="$(psql -X -v ON_ERROR_STOP=1 -d postgres -c '\set VERBOSITY verbose' \
	-c "SELECT emissions_emit('x')" 2>&1)" && status=0 || status=$?
comment "$out"
check "emissions_emit fails on a standby" test "$status" -ne 0
check "with SQLSTATE 25006" grep -q 'ERROR:  25006:' <<<"$out"
check "and a message naming recovery" \
	grep -q 'cannot emit events during recovery' <<<"$out"

check_eq "emissions_active() answers f on a standby" f \
	"$(psql -X -At -d postgres -c 'SELECT emissions_active()' 2>&1)"
check_eq "no launcher or delivery worker runs on a standby" 0 \
	"$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type LIKE 'emissions%'" 2>&1)"

cluster_stop "$standby"
cluster_stop "$primary"
done_testing
