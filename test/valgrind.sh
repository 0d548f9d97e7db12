#!/usr/bin/env bash
# test/valgrind.sh: the regression suites and a short fuzz_api run against a
# server under Valgrind, counting the memory errors in the emissions code.
#
# By hand, not from test/run.sh (which runs only test/check_*.sh): it takes
# tens of minutes.  Run as root, like test/run.sh:
#
#   bash test/valgrind.sh                       # FUZZ_API_CALLS=3000
#   FUZZ_API_CALLS=500 bash test/valgrind.sh    # shorter
#
# It builds and installs the extension (unless EMISSIONS_BUILT is set),
# installs valgrind if missing, and starts a throwaway cluster whose
# postmaster runs under memcheck with --trace-children=yes (every backend,
# the launcher and the delivery workers are checked), --leak-check=no,
# --error-exitcode=128 (a process with an error exits with 128, which the
# postmaster reports) and the suppressions in test/valgrind.supp (reports
# of PostgreSQL's own code, named through the functions Debian's stripped
# binaries export).  Against it, the pg_regress and isolation suites of the
# Makefile (what make installcheck runs, with their output kept in the cluster directory rather
# than in the work tree) and test/fuzz_api with FUZZ_API_CALLS calls.  Then it
# stops the server and reports the Valgrind errors, in all and those with a
# frame in emissions.so; those are copied to valgrind-emissions.txt in the
# directory it names, which it keeps.  The exit status is non-zero if any
# error involves emissions.so.
#
# Debian's PostgreSQL is built without USE_VALGRIND: palloc'd chunks are not
# marked for Valgrind, so a read of freed or uninitialised memory inside a
# memory context goes unseen; what is seen is invalid access to malloc'd
# memory and the stack, and uninitialised values that decide a branch or
# reach a system call.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
cd "$top"

calls="${FUZZ_API_CALLS:-3000}"
pgxs="$(dirname "$(dirname "$(pg_config --pgxs)")")"
keep=""

# Install valgrind with apt-get unless it is there.
install_valgrind() {
	command -v valgrind >/dev/null && return 0
	echo "# installing valgrind"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
}

# Read into array $2 the words of variable $1 of the Makefile (REGRESS,
# ISOLATION).
make_var() {
	# shellcheck disable=SC2016 # make expands it, not the shell
	read -r -a "$2" < <(make -s --no-print-directory \
		PG_CONFIG="$PGBIN/pg_config" --eval 'print-%: ; @echo $($*)' \
		"print-$1")
}

# Start the cluster in $CLUSTER with its postmaster under valgrind, and
# wait until it accepts connections (slowly: everything runs emulated).
start_under_valgrind() {
	local port line
	port="$(free_port)"
	echo "$port" >"$CLUSTER/port"
	for line in "listen_addresses = ''" "unix_socket_directories = '$CLUSTER'" \
		"port = $port" "shared_preload_libraries = 'emissions'" \
		"max_worker_processes = 32" "max_prepared_transactions = 10" \
		"autovacuum = off" "jit = off" "log_line_prefix = '%m [%p] '"; do
		echo "$line" >>"$CLUSTER/data/postgresql.conf"
	done
	mkdir "$CLUSTER/valgrind"
	chown postgres: "$CLUSTER/valgrind"
	as_pg valgrind --quiet --tool=memcheck --trace-children=yes \
		--leak-check=no --error-exitcode=128 --num-callers=40 \
		--suppressions="$top/test/valgrind.supp" \
		--gen-suppressions=all --fullpath-after= \
		--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \
		--log-file="$CLUSTER/valgrind/%p.log" \
		"$PGBIN/postgres" -D "$CLUSTER/data" >"$CLUSTER/server.log" 2>&1 &
	postmaster=$!
	cluster_env "$CLUSTER"
	for _ in $(seq 600); do
		pg_isready -q && return 0
		kill -0 "$postmaster" 2>/dev/null || break
		sleep 1
	done
	echo "# the server under valgrind did not start; its log:" >&2
	sed 's/^/#   /' "$CLUSTER/server.log" >&2
	return 1
}

# Stop the server (each process writes its Valgrind summary as it exits).
stop_server() {
	as_pg pg_ctl -D "$CLUSTER/data" -m fast -w -t 600 stop >/dev/null 2>&1 ||
		as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null 2>&1 ||
		true
}

# Count the Valgrind errors of the logs; copy those with a frame in the
# emissions code to FILE: a frame in emissions.so shows as one of the
# extension's source files (with its debugging information) or as the
# library itself.  Prints "ALL OURS".
count_errors() {
	local names pattern
	names="$(find "$top/src" -maxdepth 1 -name '*.c' -printf '%f\n' |
		sed 's/\.c$//' | paste -sd '|')"
	pattern="emissions[.]so|/src/($names)[.]c:[0-9]"
	awk -v out="$1" -v ours_re="$pattern" '
		/VALGRINDERROR-BEGIN/ { inside = 1; block = ""; ours = 0; next }
		/VALGRINDERROR-END/ {
			inside = 0; all++
			if (ours) { mine++; printf "%s\n", block >> out }
			next
		}
		inside { block = block FILENAME ": " $0 "\n"; if ($0 ~ ours_re) ours = 1 }
		END { printf "%d %d\n", all + 0, mine + 0 }
	' "$CLUSTER"/valgrind/*.log
}

# Run a suite program; count its "... ok" and "... FAILED" lines.
run_suite() {
	local name="$1" out="$CLUSTER/$1.out" status=0 p f
	shift
	"$@" >"$out" 2>&1 || status=$?
	p="$(grep -cE '^(test |     +)?[^ ]+ +\.\.\. +ok' "$out" || true)"
	f="$(grep -cE '\.\.\. +(FAILED|failed)' "$out" || true)"
	if [ "$status" -eq 0 ] && [ "$f" -eq 0 ] && [ "$p" -gt 0 ]; then
		ok "$name under valgrind: $p tests passed"
	else
		not_ok "$name under valgrind: $p passed, $f failed (status $status)"
		sed 's/^/#   /' "$out" | tail -n 20
	fi
}

# Keep the cluster directory (logs) unless the run was interrupted early.
keep_logs() {
	if [ -n "$keep" ] && [ -d "$keep" ]; then
		stop_server
		rm -rf "$keep/data"
		CLUSTERS=()
		echo "# logs kept in $keep"
	fi
}

prepare
install_valgrind
start=$SECONDS

cluster_dir CLUSTER
keep="$CLUSTER"
trap 'keep_logs; cleanup_clusters' EXIT
as_pg initdb -N -A trust -U postgres -D "$CLUSTER/data" >"$CLUSTER/initdb.log"
cc -Wall -Werror -O2 -I"$(pg_config --includedir)" test/fuzz_api.c \
	-L"$(pg_config --libdir)" -lpq -o "$CLUSTER/fuzz_api"
echo "# starting the server under valgrind in $CLUSTER"
start_under_valgrind
echo "# started in $((SECONDS - start)) s"

regress=()
isolation=()
make_var REGRESS regress
make_var ISOLATION isolation
echo "# pg_regress: ${regress[*]}"
run_suite pg_regress "$pgxs/test/regress/pg_regress" --inputdir=./ \
	--outputdir="$CLUSTER/regress" --bindir="$PGBIN" \
	--dbname=contrib_regression "${regress[@]}"
echo "# isolation: ${isolation[*]}"
run_suite isolation "$pgxs/test/isolation/pg_isolation_regress" \
	--inputdir=./ --outputdir="$CLUSTER/isolation" --bindir="$PGBIN" \
	--dbname=isolation_regression "${isolation[@]}"
echo "# fuzz_api, $calls calls"
status=0
FUZZ_API_CALLS="$calls" FUZZ_API_SLOW=20 PGDATABASE=postgres \
	"$CLUSTER/fuzz_api" >"$CLUSTER/fuzz_api.out" 2>&1 || status=$?
grep -E '^(not )?ok ' "$CLUSTER/fuzz_api.out" | sed 's/^/#   fuzz_api: /'
if [ "$status" -eq 0 ]; then
	ok "fuzz_api under valgrind"
else
	not_ok "fuzz_api under valgrind (status $status)"
fi

echo "# stopping the server"
stop_server
if grep -E 'exited with exit code 128|terminated by signal' \
	"$CLUSTER/server.log" >"$CLUSTER/exits.txt"; then
	not_ok "no process exited with valgrind's error code or a signal"
	sed 's/^/#   /' "$CLUSTER/exits.txt" | head -n 10
else
	ok "no process exited with valgrind's error code or a signal"
fi
read -r all mine < <(count_errors "$CLUSTER/valgrind-emissions.txt")
echo "# valgrind: $all errors in all, $mine with a frame in emissions.so," \
	"$(find "$CLUSTER/valgrind" -name '*.log' | wc -l) processes," \
	"$((SECONDS - start)) s"
check_eq "no valgrind error in emissions.so" 0 "$mine"
if [ "$mine" -gt 0 ]; then
	sed 's/^/#   /' "$CLUSTER/valgrind-emissions.txt" | head -n 60
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
