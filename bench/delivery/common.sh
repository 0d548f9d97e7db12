# bench/delivery/common.sh: helpers shared by bench/latency.sh,
# bench/drain.sh and bench/fanout.sh (sourced after test/lib.sh).
# shellcheck shell=bash
# shellcheck disable=SC2154  # top and CLUSTER come from test/lib.sh

# How many PostgreSQL servers (postmasters) run on the machine.
count_servers() {
	pgrep -c -f '^[^ ]*/postgres -D ' || true
}
# Counted when this file is sourced, before the benchmark's own cluster starts.
OTHER_SERVERS_AT_START="$(count_servers)"

# psql on the benchmark's cluster: one command, unaligned, tuples only.
q() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "$1"
}

# Compile bench/NAME.c into $CLUSTER/NAME (the cluster's directory is
# removed by the EXIT trap, so no binary is left in the tree).
build_bench_c() {
	cc -Wall -Werror -O2 -I"$(pg_config --includedir)" "$top/bench/$1.c" \
		-L"$(pg_config --libdir)" -lpq -o "$CLUSTER/$1"
}

# printf-format an awk expression: calc FORMAT EXPR.
calc() {
	awk "BEGIN { printf \"$1\", $2 }"
}

# PASS or MISS: verdict MEASURED OP TARGET.
verdict() {
	if awk -v m="$1" -v t="$3" "BEGIN { exit !(m $2 t) }"; then echo PASS; else echo MISS; fi
}

# Median of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Fail early, with a clear message, when the extension has no delivery yet
# (no emissions_wait_delivered(), or no delivery worker comes up).
require_delivery() {
	local _
	if [ "$(q "SELECT count(*) FROM pg_proc WHERE proname = 'emissions_wait_delivered'")" -eq 0 ]; then
		echo "# this build of emissions has no delivery (no emissions_wait_delivered())" >&2
		return 1
	fi
	for _ in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'emissions delivery' AND datname = current_database()")" -gt 0 ] &&
			return 0
		sleep 0.1
	done
	echo "# no delivery worker (backend_type 'emissions delivery') for $(q "SELECT current_database()") after 10 s" >&2
	return 1
}

# The report's file: bench/results/NAME-DATE.md.
report_file() {
	mkdir -p "$top/bench/results"
	echo "$top/bench/results/$1-$(date +%Y%m%d-%H%M%S).md"
}

# One line on what ran: server version, emissions commit, CPUs, settings.
environment_line() {
	local commit
	commit="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git -C "$top" diff --quiet HEAD -- src sql 2>/dev/null || commit="$commit+uncommitted"
	echo "$(q "SELECT version()" | cut -d, -f1); emissions $commit; $(nproc) CPUs;" \
		"fsync=$(q "SHOW fsync"), synchronous_commit=$(q "SHOW synchronous_commit")," \
		"shared_buffers=$(q "SHOW shared_buffers"), autovacuum=$(q "SHOW autovacuum")," \
		"emissions.batch_size=$(q "SHOW emissions.batch_size" 2>/dev/null || echo '?')," \
		"emissions.poll_interval=$(q "SHOW emissions.poll_interval" 2>/dev/null || echo '?');" \
		"other PostgreSQL servers running on the machine: $OTHER_SERVERS_AT_START at the start," \
		"$(($(count_servers) - 1)) at the end (they share the CPUs and the disk)"
}

# Column NAME of emissions_stats, or empty when the view has no such column.
stats_col() {
	q "SELECT $1 FROM emissions_stats" 2>/dev/null || true
}

# pgbench's tps / transactions / failed transactions out of its output file.
pgbench_tps() {
	sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$1"
}
pgbench_xacts() {
	sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1"
}
pgbench_failed() {
	local f
	f="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1")"
	echo "${f:-0}"
}
# Did pgbench run cleanly?  pgbench_ok OUTPUT EXIT_STATUS; prints its output
# as comments when not.
pgbench_ok() {
	local x
	x="$(pgbench_xacts "$1")"
	if [ "$2" -ne 0 ] || [ "$(pgbench_failed "$1")" -ne 0 ] || [ "${x:-0}" -eq 0 ] ||
		grep -qiE 'error|abort' "$1"; then
		echo "# pgbench exited $2; its output:" >&2
		sed 's/^/#   /' "$1" >&2
		return 1
	fi
}
