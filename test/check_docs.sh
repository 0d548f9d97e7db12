#!/usr/bin/env bash
# test/check_docs.sh: every SQL and JSON sample of the documentation runs.
#
# For README.md, CHANGELOG.md and each docs/*.md, in a database of its own
# (with the extension created first, unless the file's own samples create
# it), the
# file's ```sql blocks run in order in one psql session that stops at the
# first error, and each ```json block must parse as jsonb.  The file passes
# when nothing failed and, once the worker has delivered everything, no
# delivery failed (no dead letter, no pending retry): a handler or table in
# a sample that cannot take its events fails the file too.
#
# Every relative link of these files must lead to a file, and its #anchor,
# if any, to a heading of that file; and docs/testing.md's table must name
# every test of test/tests.list, docs/configuration.md every emissions.*
# setting of pg_settings, README.md link every file of docs/, and META.json
# parse and name the current release.
#
# Two marks, in HTML comments (invisible on GitHub and in any renderer):
#   <!-- not run: REASON -->  on the line before a ```sql fence: the block
#                             is not run (for a sample that needs another
#                             server, say); the reason is printed.
#   <!-- ```sql ... ``` -->   a block inside a comment runs like the others,
#                             unseen by the reader: the set-up a sample
#                             takes for granted (a table, a role).
# Roles belong to the cluster: a file whose set-up creates roles drops them
# at its end, in a hidden block too.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

# Print the psql script of FILE's samples (see above) on stdout, and the
# samples left out, one "not run" comment each, on stderr.
extract_samples() {
	awk -v file="$1" '
	/^[ \t]*```/ {
		fence = $0
		sub(/^[ \t]*/, "", fence)
		if (lang != "") {                   # a closing fence
			if (lang == "json")
				print "$emissions_json$::jsonb IS NOT NULL AS json_parses;"
			lang = ""
			next
		}
		indent = match($0, /[^ \t]/) - 1
		if (fence ~ /^```sql[ \t]*$/) {
			if (skip) {
				printf "# not run: %s:%d: %s\n", file, NR, reason > "/dev/stderr"
				lang = "skipped"
			} else {
				lang = "sql"
				printf "\\echo %s:%d\n", file, NR
			}
		} else if (fence ~ /^```json[ \t]*$/) {
			lang = "json"
			printf "\\echo %s:%d\n", file, NR
			print "SELECT $emissions_json$"
		} else {
			lang = "other"
		}
		skip = 0
		next
	}
	lang == "sql" || lang == "json" {
		line = $0
		if (indent > 0 && substr(line, 1, indent) ~ /^[ \t]*$/)
			line = substr(line, indent + 1)
		print line
		next
	}
	lang != "" { next }
	/<!-- not run: .* -->/ {
		skip = 1
		reason = $0
		sub(/.*<!-- not run: */, "", reason)
		sub(/ *-->.*/, "", reason)
		next
	}
	/[^ \t]/ { skip = 0 }
	' "$1"
}

# Print the relative links of FILE that lead nowhere: a file that does not
# exist, or an anchor (#...) that no heading of the target file makes, as
# GitHub makes them (lower case, punctuation dropped, spaces as hyphens).
broken_links() {
	local doc="$1" link target anchor dir
	dir="$(dirname "$doc")"
	awk '/^[ \t]*```/ { code = !code; next }
		!code { while (match($0, /\]\([^) ]+\)/)) {
			print substr($0, RSTART + 2, RLENGTH - 3)
			$0 = substr($0, RSTART + RLENGTH) } }' "$doc" |
		grep -v -E '^(https?|mailto):' |
		while read -r link; do
			target="${link%%#*}"
			anchor=""
			[ "$target" != "$link" ] && anchor="${link#*#}"
			[ -z "$target" ] && target="$(basename "$doc")"
			if [ ! -e "$dir/$target" ]; then
				echo "$link"
			elif [ -n "$anchor" ] && [[ "$target" == *.md ]] &&
				! awk '/^[ \t]*```/ { code = !code; next }
					!code && /^#+ / { sub(/^#+ /, ""); print }' "$dir/$target" |
				tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 _-]//g; s/ /-/g' |
				grep -qx -- "$anchor"; then
				echo "$link"
			fi
		done
}

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16"
export PGDATABASE=postgres

cd "$top"
for doc in README.md CHANGELOG.md docs/*.md; do
	name="$(basename "$doc" .md | tr 'A-Z-' 'a-z_')"
	db="docs_$name"
	script="$CLUSTER/$name.sql"
	extract_samples "$doc" >"$script" 2>"$CLUSTER/$name.skipped"
	[ -s "$CLUSTER/$name.skipped" ] && comment "$(cat "$CLUSTER/$name.skipped")"
	broken="$(broken_links "$doc" || true)"
	check_eq "$doc: every relative link leads to a file and heading" "" "$broken"
	blocks="$(grep -c '^\\echo ' "$script" || true)"
	if [ "$blocks" -eq 0 ]; then
		comment "$doc: no SQL or JSON sample"
		continue
	fi
	psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db"
	grep -qi '^CREATE EXTENSION emissions' "$script" ||
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION emissions'
	if psql -X -v ON_ERROR_STOP=1 -d "$db" -f "$script" \
		>"$CLUSTER/$name.out" 2>&1; then
		ok "$doc: its $blocks samples run without an error"
	else
		not_ok "$doc: its $blocks samples run without an error"
		comment "$(tail -n 15 "$CLUSTER/$name.out")"
	fi
	# Deliveries the samples caused, once everything is delivered (unless
	# the samples dropped the extension).
	failures=0
	if [ "$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_extension
			WHERE extname = 'emissions'")" = 1 ]; then
		failures="$(psql -X -At -v ON_ERROR_STOP=1 -d "$db" \
			-c "SELECT emissions_wait_delivered('60s')" \
			-c "SELECT dead_letters + retries_pending FROM emissions_stats" \
			2>&1 | tail -n 1)"
	fi
	check_eq "$doc: every delivery its samples caused succeeded" 0 "$failures"
	psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE $db"
done

# docs/configuration.md's table has a row for every emissions.* setting the
# server knows.
undocumented=""
for setting in $(psql -X -At -c "SELECT name FROM pg_settings
		WHERE name LIKE 'emissions.%' ORDER BY name"); do
	grep -qF "| \`$setting\` |" docs/configuration.md || undocumented+="$setting "
done
check_eq "docs/configuration.md has every emissions.* setting" "" "$undocumented"

# README.md's map of the documentation leads to every file of docs/.
unmapped=""
for doc in docs/*.md; do
	grep -qF "]($doc)" README.md || unmapped+="$doc "
done
check_eq "README.md's map links every file of docs/" "" "$unmapped"

# META.json (PGXN) parses, and names the release emissions.control makes
# the default and a SQL script that exists.
default_version="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" emissions.control)"
meta="$(psql -X -At -v ON_ERROR_STOP=1 -v meta="$(cat META.json)" 2>&1 <<'SQL'
SELECT m->'meta-spec'->>'version', m->>'version', m->>'license',
       m->'provides'->'emissions'->>'version', m->'provides'->'emissions'->>'file'
  FROM (SELECT :'meta'::jsonb AS m) AS s;
SQL
)" || true
IFS='|' read -r spec version license provides_version file <<<"$meta"
check_eq "META.json parses, meta-spec 1.0.0" 1.0.0 "$spec"
check_eq "META.json's version is emissions.control's default_version" \
	"$default_version.0" "$version"
check_eq "META.json provides emissions at that version" "$version" \
	"$provides_version"
check_eq "META.json's license is the PostgreSQL License" postgresql "$license"
check "META.json's file exists ($file)" test -f "${file:-/nonexistent}"

# docs/testing.md's table of every test names each test of test/tests.list.
unlisted=""
while read -r kind name; do
	case "$kind" in
	regress) file="sql/$name.sql" ;;
	isolation) file="specs/$name.spec" ;;
	program) file="test/$name.c" ;;
	script) file="test/$name.sh" ;;
	*) continue ;;
	esac
	grep -qF "| \`$file\` |" docs/testing.md || unlisted+="$file "
done < <(grep -v '^#' test/tests.list)
check_eq "docs/testing.md describes every test of test/tests.list" "" "$unlisted"

cluster_stop "$CLUSTER"
done_testing
