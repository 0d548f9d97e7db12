#!/usr/bin/env bash
# test/check_notify_queue.sh: a full notification queue pauses delivery,
# said once, and delivery resumes when the queue drains, nothing lost or
# doubled.
#
# A session runs LISTEN and stays idle in a transaction, so the cluster's
# notification queue cannot move past it; other sessions fill the queue
# (8 GB on PostgreSQL 15 and 16, about a minute; from 17 its size is a
# setting, made small here) until a NOTIFY fails.  Then every
# delivery commit fails: the worker must keep the event in the outbox,
# warn once (not restart, not log an error per try), and back off.  Once
# the idle listener is terminated, as docs/troubleshooting.md tells an
# operator to do, the event is delivered exactly once, and the worker says
# it resumed.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

queue=()
[ "$PG_MAJOR" -ge 17 ] && queue=("max_notify_queue_pages = 64")
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" ${queue[@]+"${queue[@]}"}
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 \
	-c 'CREATE EXTENSION emissions' \
	-c 'CREATE TABLE sink (id bigint, type text)' \
	-c "SELECT emissions_add_adapter('sink', 'table', 'sink')"
log="$CLUSTER/server.log"

# The listener idle in a transaction: its psql reads a FIFO this script
# holds open, and ends when the script closes it.
mkfifo "$CLUSTER/idle.fifo"
psql -X -q <"$CLUSTER/idle.fifo" >/dev/null 2>&1 &
exec 7>"$CLUSTER/idle.fifo"
echo "LISTEN idle_listener; BEGIN; SELECT 'idle listener';" >&7
for _ in $(seq 1 100); do
	[ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity
		WHERE state = 'idle in transaction'")" = 1 ] && break
	sleep 0.1
done

# Fill the queue, about 1 GB a transaction, until a NOTIFY fails.
full=no
for _ in $(seq 1 12); do
	if ! out="$(psql -X -At -c "SELECT count(pg_notify('fill',
			i::text || repeat('x', 7900))) FROM generate_series(1, 125000) i" 2>&1)"; then
		grep -q "too many notifications" <<<"$out" && full=yes
		break
	fi
done
check_eq "the notification queue fills up" yes "$full"

worker="$(psql -X -At -c "SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'emissions delivery'")"
psql -X -q -v ON_ERROR_STOP=1 \
	-c "SELECT emissions_start(), emissions_emit('queue.test')"
sleep 8
check_eq "the event waits in the outbox" 1 \
	"$(psql -X -At -c "SELECT count(*) FROM emissions_pending_events()")"
check_eq "the worker warns once that delivery is paused, and why" 1 \
	"$(grep -c 'WARNING:  emissions delivery in database "postgres" is paused: its transaction could not commit: too many notifications' "$log" || true)"
check_eq "the worker does not fail or restart" 0 \
	"$(grep -c -E "background worker \"emissions delivery\" .* exited|\[$worker\] ERROR" "$log" || true)"

psql -X -q -v ON_ERROR_STOP=1 -c "SELECT pg_terminate_backend(pid)
	FROM pg_stat_activity WHERE state = 'idle in transaction'"
exec 7>&-
t0=$SECONDS
for _ in $(seq 1 120); do
	[ "$(psql -X -At -c "SELECT count(*) FROM sink")" = 1 ] && break
	sleep 1
done
comment "delivered $((SECONDS - t0)) s after the listener was terminated"
check_eq "once the idle listener is gone, the event is delivered once" 1 \
	"$(delivered_count queue.test)"
check_eq "into the table adapter once" 1 \
	"$(psql -X -At -c "SELECT count(*) FROM sink WHERE type = 'queue.test'")"
check_eq "the worker says it resumed" 1 \
	"$(grep -c 'emissions delivery in database "postgres" resumed after' "$log" || true)"
check_eq "and the queue drained" t \
	"$(psql -X -At -c "SELECT pg_notification_queue_usage() < 0.01")"
[ "$failed" -eq 0 ] || comment "$(grep -E 'emissions|ERROR|WARNING' "$log" | tail -20)"
done_testing
