#!/usr/bin/env bash
# test/check_symbols.sh: every symbol the shared library exports starts
# with emissions_, but for PostgreSQL's entry points (_PG_init,
# Pg_magic_func, the pg_finfo_* records of the SQL functions).
#
# A library shares one symbol namespace with the server and every other
# library loaded into it: an exported helper named like another module's
# (adapter_deliver, jsonb_put_string) could be bound to the wrong one.
# PostgreSQL 16 and later build extensions with hidden visibility, so
# there only the entry points are exported; on 15 every global function
# is, and this check holds the prefix there.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

lib="$top/emissions.so"
check "the library is built" test -f "$lib"
all="$(nm -D --defined-only "$lib" | awk '{ print $3 }')"
others="$(grep -v -E '^(emissions_|pg_finfo_|_PG_init$|Pg_magic_func$)' <<<"$all" || true)"
check_eq "every exported symbol starts with emissions_ (entry points aside)" \
	"" "$others"
check_eq "the entry points are exported" \
	2 "$(grep -c -x -E '_PG_init|Pg_magic_func' <<<"$all")"

done_testing
