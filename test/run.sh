#!/usr/bin/env bash
# test/run.sh: run every emissions test against a throwaway cluster.
#
# Installs what is missing, builds and installs the extension, starts a
# cluster with the library preloaded, then runs the pg_regress and isolation
# suites (make installcheck), every program in test/bin/ (built from test/*.c)
# and every test/check_*.sh.
# Each result line counts as a pass or a failure; the last line printed is
# "N passed, N failed", and the exit status is non-zero if anything failed or
# nothing ran.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
cd "$top"

# Print the summary line and exit with the run's verdict.
finish() {
	cleanup_clusters
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

# Echo a result file and count its "ok ..." / "not ok ..." lines; a non-zero
# STATUS with no failing line, a crash or no result line counts as one failure.
tally() {
	local name="$1" out="$2" status="$3" line p=0 f=0
	while IFS= read -r line; do
		echo "$line"
		case "$line" in
		"ok "*) p=$((p + 1)) ;;
		"not ok "*) f=$((f + 1)) ;;
		esac
	done <"$out"
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$status" -eq 124 ]; then
		not_ok "$name timed out"
	elif [ "$status" -gt 128 ]; then
		not_ok "$name crashed (signal $((status - 128)))"
	elif [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		not_ok "$name exited with status $status"
	elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		not_ok "$name printed no result"
	fi
}

# Run make installcheck (pg_regress, then the isolation tester) and count
# its "test NAME ... ok|FAILED" lines; -i so one suite's failure does not
# keep the next from running.
run_regress() {
	local out="$CLUSTER/regress.out" status=0 line p=0 f=0 broken=0 diffs
	local result='^(test |     +)[^ ]+ +\.\.\. +(ok|FAILED|failed)'
	rm -f regression.diffs output_iso/regression.diffs
	timeout 900 make -i PG_CONFIG="$PGBIN/pg_config" installcheck \
		>"$out" 2>&1 || status=$?
	while IFS= read -r line; do
		echo "$line"
		if [[ "$line" =~ $result ]]; then
			if [ "${BASH_REMATCH[2]}" = ok ]; then
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

echo "# pg_regress"
run_regress

for prog in test/bin/*; do
	[ -x "$prog" ] || continue
	echo "# $prog"
	status=0
	timeout 300 "$prog" >"$CLUSTER/prog.out" 2>&1 || status=$?
	tally "$prog" "$CLUSTER/prog.out" "$status"
done

for script in test/check_*.sh; do
	[ -e "$script" ] || continue
	echo "# $script"
	status=0
	timeout 300 bash "$script" >"$CLUSTER/check.out" 2>&1 || status=$?
	tally "$script" "$CLUSTER/check.out" "$status"
done

# A backend that died of a signal shows in the log, whatever the client saw.
if grep -q 'terminated by signal' "$CLUSTER/server.log"; then
	grep 'terminated by signal' "$CLUSTER/server.log"
	not_ok "no server process crashed"
else
	ok "no server process crashed"
fi

finish
