#!/usr/bin/env bash
# test/run.sh: run every emissions test against a throwaway cluster.
#
# PG_MAJOR=N runs the suite on PostgreSQL N alone (on this machine, or in
# test/pgenv.sh's environment for N when this machine has no such server);
# without PG_MAJOR, test/all_versions.sh runs it on 15, 17 and 18.
#
# Installs what is missing, builds and installs the extension, starts a
# cluster with the library preloaded, then runs the pg_regress and isolation
# suites (make installcheck), then the programs in test/bin/ (built from
# test/*.c) and the test/check_*.sh scripts that test/tests.list names.
# test/tests.list names every test that must run: a listed test that is
# missing or did not run fails, and so does a test file found but not
# listed.  Each result line counts: "ok ..." as a pass, "not ok ..." as a
# failure, "ok ... # SKIP" as skipped (never a pass); a program or script
# must print its TAP plan ("1..N") and N results.  Every cluster's server
# log, the check scripts' too, is scanned for crashed server processes as
# the cluster stops (cluster_stop in test/lib.sh).  The last line printed is
# "N passed, N failed, N skipped", and the exit status is non-zero if
# anything failed or nothing passed.
set -euo pipefail
# PG_MAJOR picks one PostgreSQL version; unset, every tested version runs.
[ -n "${PG_MAJOR:-}" ] || exec bash "$(dirname "$0")/all_versions.sh" "$@"
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
cd "$top"

skipped=0

# Print the summary line and exit with the run's verdict.
finish() {
	cleanup_clusters
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

# Echo a result file and count its TAP lines: "ok ..." passes, "not ok ..."
# fails, "ok ... # SKIP" is skipped.  A non-zero STATUS with no failing
# line, a crash, no result line, no plan ("1..N") or a plan that does not
# match the results (a program that stopped early) counts as one failure.
tally() {
	local name="$1" out="$2" status="$3" line p=0 f=0 s=0 plan=""
	local skip='^ok .*#[[:space:]]*[Ss][Kk][Ii][Pp]'
	while IFS= read -r line; do
		echo "$line"
		if [[ "$line" =~ $skip ]]; then
			s=$((s + 1))
		elif [[ "$line" == "ok "* ]]; then
			p=$((p + 1))
		elif [[ "$line" == "not ok "* ]]; then
			f=$((f + 1))
		elif [[ "$line" =~ ^1\.\.([0-9]+)$ ]]; then
			plan="${BASH_REMATCH[1]}"
		fi
	done <"$out"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$status" -eq 124 ]; then
		not_ok "$name timed out"
	elif [ "$status" -gt 128 ]; then
		not_ok "$name crashed (signal $((status - 128)))"
	elif [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		not_ok "$name exited with status $status"
	elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		not_ok "$name printed no result"
	elif [ -z "$plan" ]; then
		not_ok "$name printed no plan (1..N): it stopped early"
	elif [ "$plan" -ne $((p + f + s)) ]; then
		not_ok "$name planned $plan results and printed $((p + f + s))"
	fi
}

# Read test/tests.list into the arrays of each kind (regress, isolation,
# program, script) and check that each listed test's files exist and that
# every test file found is listed.
read_list() {
	local kind name extra file
	declare -gA listed=()
	declare -ga regress=() isolation=() program=() script=()
	if [ ! -f test/tests.list ]; then
		not_ok "test/tests.list exists"
		return 0
	fi
	while read -r kind name extra; do
		case "$kind" in
		"" | "#"*) continue ;;
		regress)
			regress+=("$name")
			file="sql/$name.sql expected/$name.out"
			;;
		isolation)
			isolation+=("$name")
			file="specs/$name.spec expected/$name.out"
			;;
		program)
			program+=("$name")
			file="test/$name.c"
			;;
		script)
			script+=("$name")
			file="test/$name.sh"
			;;
		*)
			not_ok "test/tests.list: unknown kind of test: $kind"
			continue
			;;
		esac
		listed["$kind $name"]=1
		for file in $file; do
			[ -e "$file" ] || not_ok "$kind test $name: $file exists"
		done
	done <test/tests.list
	for file in sql/*.sql specs/*.spec test/*.c test/check_*.sh; do
		[ -e "$file" ] || continue
		name="$(basename "${file%.*}")"
		case "$file" in
		sql/emissions--*) continue ;;
		sql/*) kind=regress ;;
		specs/*) kind=isolation ;;
		test/*.c) kind=program ;;
		*) kind=script ;;
		esac
		[ -n "${listed["$kind $name"]:-}" ] ||
			not_ok "$file is listed in test/tests.list (as $kind $name)"
	done
}

# Run make installcheck (pg_regress, then the isolation tester) and count
# its result lines ("test NAME ... ok|FAILED" up to PostgreSQL 15, "ok|not
# ok N - NAME" from 16); -i so one suite's failure does not keep the next
# from running.  Every listed regress and isolation test must have a result.
run_regress() {
	local out="$CLUSTER/regress.out" status=0 line p=0 f=0 broken=0 diffs
	local name result='^(test |     +)([^ ]+) +\.\.\. +(ok|FAILED|failed)'
	local tap='^(ok|not ok) +[0-9]+ +[-+] +([^ ]+)'
	local -A ran=()
	rm -f regression.diffs output_iso/regression.diffs
	timeout 900 make -i PG_CONFIG="$PGBIN/pg_config" installcheck \
		>"$out" 2>&1 || status=$?
	while IFS= read -r line; do
		echo "$line"
		if [[ "$line" =~ $result ]] || [[ "$line" =~ $tap ]]; then
			ran["${BASH_REMATCH[2]}"]=1
			if [ "${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}" = ok ]; then
				p=$((p + 1))
			else
				f=$((f + 1))
			fi
		elif [[ "$line" =~ ^make:.*Error\ [0-9]+\ \(ignored\) ]]; then
			broken=1
		fi
	done <"$out"
	passed=$((passed + p))
	failed=$((failed + f))
	for diffs in regression.diffs output_iso/regression.diffs; do
		[ -s "$diffs" ] && cat "$diffs"
	done
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		not_ok "make installcheck exited with status $status"
	elif [ "$broken" -eq 1 ] && [ "$f" -eq 0 ]; then
		not_ok "make installcheck: a suite failed to run"
	elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		not_ok "make installcheck ran no test"
	fi
	for name in ${regress[@]+"${regress[@]}"} \
		${isolation[@]+"${isolation[@]}"}; do
		[ -n "${ran[$name]:-}" ] ||
			not_ok "$name ran (is it in REGRESS or ISOLATION?)"
	done
	return 0
}

echo "# building and installing"
install_missing || { not_ok "install build dependencies"; finish; }
build_install || { not_ok "build and install"; finish; }
export EMISSIONS_BUILT=1

echo "# starting a cluster with shared_preload_libraries = 'emissions'"
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" \
	"max_prepared_transactions = 10" || { not_ok "start cluster"; finish; }
export PGDATABASE=postgres

echo "# the tests in test/tests.list"
read_list

echo "# pg_regress"
run_regress

for name in ${program[@]+"${program[@]}"}; do
	prog="test/bin/$name"
	if [ ! -x "$prog" ]; then
		not_ok "$prog was built"
		continue
	fi
	echo "# $prog"
	status=0
	timeout 300 "$prog" >"$CLUSTER/prog.out" 2>&1 || status=$?
	tally "$prog" "$CLUSTER/prog.out" "$status"
done

for name in ${script[@]+"${script[@]}"}; do
	script="test/$name.sh"
	[ -e "$script" ] || continue
	echo "# $script"
	status=0
	timeout 300 bash "$script" >"$CLUSTER/check.out" 2>&1 || status=$?
	tally "$script" "$CLUSTER/check.out" "$status"
done

# A backend that died of a signal shows in the log, whatever the client
# saw: cluster_stop scans it.
before="$failed"
cluster_stop "$CLUSTER"
[ "$failed" -ne "$before" ] || ok "no server process crashed"

finish
