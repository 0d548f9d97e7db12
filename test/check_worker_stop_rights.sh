#!/usr/bin/env bash
# test/check_worker_stop_rights.sh: a command PostgreSQL refuses never
# stops a database's delivery worker (the Delivery section's "Delivery
# keeps flowing": only superusers, and a database's owner for its own
# database, can stop its worker).
#
# The utility hook stops the worker of the database that CREATE DATABASE
# ... TEMPLATE, DROP DATABASE, ALTER DATABASE ... RENAME and ... SET
# TABLESPACE need free of other sessions, then holds it off for 10 s.  It
# must do so only when the command will pass PostgreSQL's own checks.  Each
# refused command below is run by a role entitled to part of it (CREATEDB
# without owning the template, the owner without CREATEDB, the owner of a
# template, ...), twice in a row; afterwards the database's worker must be
# the same process, and an event emitted there is delivered at once.  Last,
# commands that pass (a superuser's copy, a CREATEDB role's copy of a
# template, an owner's rename) still get the worker out of the way, and it
# comes back: after a copy within about a second (the hold ends with the
# command).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16"
export PGDATABASE=postgres

# Run SQL as the current PGUSER, printing unaligned tuples (and errors).
q() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

# Print the pid of database $1's worker (empty while none runs).
worker_pid() {
	q "SELECT min(pid) FROM pg_stat_activity
		WHERE backend_type = 'emissions delivery' AND datname = '$1'"
}

# Wait up to $2 seconds (by the clock) for database $1 to have a worker;
# print its pid.
wait_worker() {
	local pid deadline=$(($(date +%s%N) + $2 * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		pid="$(worker_pid "$1")"
		if [ -n "$pid" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
}

# Print the SQLSTATE of statement $2 run as role $1 (00000 if it passes).
state_as() {
	PGUSER="$1" psql -X -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
		-c "$2" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p;
			s/^\(CREATE\|DROP\|ALTER\) DATABASE$/00000/p' | head -n 1
}

# Emit an event in database $1 and print whether it is delivered within 3 s.
delivers() {
	psql -X -At -d "$1" -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_start(), emissions_emit('stop.check')" \
		-c "SELECT emissions_wait_delivered('3s')" 2>&1 | tail -n 1
}

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE ROLE creator LOGIN CREATEDB;
CREATE ROLE owner_only LOGIN;
CREATE ROLE owner_createdb LOGIN CREATEDB;
CREATE DATABASE stop_tpl;
CREATE DATABASE stop_owned OWNER owner_only;
CREATE DATABASE stop_owned_tpl OWNER owner_only IS_TEMPLATE true;
CREATE DATABASE stop_mine OWNER owner_createdb;
SQL
for db in stop_tpl stop_owned stop_owned_tpl stop_mine; do
	psql -X -q -d "$db" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION emissions" \
		>/dev/null
done
for db in stop_tpl stop_owned stop_owned_tpl stop_mine; do
	check "$db has a worker" test -n "$(wait_worker "$db" 10)"
done

# refused ROLE DATABASE SQLSTATE STATEMENT: the statement fails with that
# SQLSTATE, twice, and the database's worker is untouched.
refused() {
	local role="$1" db="$2" want="$3" sql="$4" before after
	before="$(worker_pid "$db")"
	check_eq "$role: $sql: refused ($want)" "$want" "$(state_as "$role" "$sql")"
	check_eq "$role: ... again: refused ($want)" "$want" \
		"$(state_as "$role" "$sql")"
	sleep 0.3
	after="$(worker_pid "$db")"
	check_eq "... $db's worker is the same process" "${before:-none}" \
		"${after:-none}"
	check_eq "... and delivers at once" "t" "$(delivers "$db")"
}

refused creator stop_tpl 42501 "CREATE DATABASE stop_copy TEMPLATE stop_tpl"
refused creator stop_owned 42501 \
	"CREATE DATABASE stop_copy TEMPLATE stop_owned OWNER creator"
refused owner_only stop_owned_tpl 42501 \
	"CREATE DATABASE stop_copy TEMPLATE stop_owned_tpl"
refused creator stop_owned_tpl 42P04 \
	"CREATE DATABASE stop_owned TEMPLATE stop_owned_tpl"
refused creator stop_owned_tpl 42501 \
	"CREATE DATABASE stop_copy TEMPLATE stop_owned_tpl OWNER owner_only"
refused creator stop_owned 42501 "DROP DATABASE stop_owned"
refused owner_only stop_owned_tpl 42809 "DROP DATABASE stop_owned_tpl"
refused owner_only stop_owned 42501 \
	"ALTER DATABASE stop_owned RENAME TO stop_renamed"
refused owner_createdb stop_mine 42P04 \
	"ALTER DATABASE stop_mine RENAME TO stop_tpl"
refused creator stop_owned 42501 \
	"ALTER DATABASE stop_owned RENAME TO stop_renamed"
refused owner_only stop_owned 42704 \
	"ALTER DATABASE stop_owned SET TABLESPACE no_such_space"
refused owner_only stop_owned 42501 \
	"ALTER DATABASE stop_owned SET TABLESPACE pg_global"
refused creator stop_owned 42501 \
	"ALTER DATABASE stop_owned SET TABLESPACE pg_default"

# Commands that pass still get the worker out of the way; a copy needs it
# gone only while it runs, so the template's worker is back within about a
# second, not once the 10 s hold expires.
check_eq "a superuser copies a database with a worker" "00000" \
	"$(state_as postgres "CREATE DATABASE stop_copy1 TEMPLATE stop_tpl")"
check "... whose worker is back within 4 s" test -n "$(wait_worker stop_tpl 4)"
check_eq "a CREATEDB role copies a template (datistemplate) with a worker" \
	"00000" "$(state_as creator \
		"CREATE DATABASE stop_copy2 TEMPLATE stop_owned_tpl")"
check "... whose worker is back within 4 s" \
	test -n "$(wait_worker stop_owned_tpl 4)"
check_eq "... and delivers" "t" "$(delivers stop_owned_tpl)"
check_eq "an owner with CREATEDB renames its database with a worker" \
	"00000" "$(state_as owner_createdb \
		"ALTER DATABASE stop_mine RENAME TO stop_mine2")"
check "... which gets a worker again" test -n "$(wait_worker stop_mine2 20)"
check_eq "... and delivers" "t" "$(delivers stop_mine2)"
check "the first copy gets a worker of its own" \
	test -n "$(wait_worker stop_copy1 10)"
check "the second copy gets a worker of its own" \
	test -n "$(wait_worker stop_copy2 10)"

done_testing
