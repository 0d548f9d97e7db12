#!/usr/bin/env bash
# test/all_versions.sh: the whole test suite on PostgreSQL 15, 17 and 18.
#
# test/run.sh runs this when PG_MAJOR is not set.  It runs test/run.sh once
# per version, one after the other, with PG_MAJOR set: 15 on this machine
# (Debian 12's server), 17 and 18 in test/pgenv.sh's Debian 13 and Debian
# unstable environments (made on the first run, then cached; run.sh enters
# them itself).  Each version's lines are printed as they come, prefixed
# with "pgN: ".  A version whose run printed no summary line (its
# environment, build or cluster could not be made) counts as one failure,
# and so does one that exited non-zero without counting a failure.  The last
# line sums all three: "N passed, N failed" (", N skipped" too when a
# version's summary has it); the exit status is non-zero if anything failed
# or nothing passed.  EMISSIONS_VERSIONS="15 18" runs a subset.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ "$(id -u)" -eq 0 ] || exec sudo bash "$here/all_versions.sh" "$@"

read -ra versions <<<"${EMISSIONS_VERSIONS:-15 17 18}"
summary='^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$'
passed=0
failed=0
skipped=0
has_skipped=0
report=()
log="$(mktemp /tmp/emissions-versions.XXXXXX)"
trap 'rm -f "$log"' EXIT

for v in "${versions[@]}"; do
	echo "# PostgreSQL $v"
	start="$(date +%s)"
	PG_MAJOR="$v" bash "$here/run.sh" "$@" 2>&1 | tee "$log" |
		sed -u "s/^/pg$v: /"
	status="${PIPESTATUS[0]}"
	elapsed=$(($(date +%s) - start))
	line="$(grep -E "$summary" "$log" | tail -n 1)"
	if [[ "$line" =~ $summary ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		if [ -n "${BASH_REMATCH[4]}" ]; then
			skipped=$((skipped + BASH_REMATCH[4]))
			has_skipped=1
		fi
		if [ "$status" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
			echo "not ok - PostgreSQL $v: test/run.sh exited with status $status"
			failed=$((failed + 1))
			line="$line (exit status $status)"
		fi
	else
		echo "not ok - PostgreSQL $v: the suite did not run (status $status)"
		failed=$((failed + 1))
		line="did not run (status $status)"
	fi
	report+=("# PostgreSQL $v: $line, $((elapsed / 60)) min $((elapsed % 60)) s")
done

printf '%s\n' "${report[@]}"
if [ "$has_skipped" -eq 1 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
