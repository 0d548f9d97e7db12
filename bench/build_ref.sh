#!/usr/bin/env bash
# bench/build_ref.sh: build a git ref of emissions into a copy of the server
# of its own, so that two builds can run side by side (test/lib.sh's
# EMISSIONS_PGBIN).
#
# Copies the server test/lib.sh would use (PG_MAJOR, or EMISSIONS_PGBIN's
# copy: its usr/lib/postgresql/N, usr/share/postgresql/N and
# usr/include/postgresql, about 60 MB; PostgreSQL finds its files relative
# to its binaries, so the copy runs from anywhere) into DIR/usr, exports
# REF's tree (git archive, nothing of the work tree's changes) into DIR/src,
# builds it and installs it into the copy.  Prints the copy's bin directory,
# for EMISSIONS_PGBIN.  DIR must not exist (mktemp -u, say); removing it
# removes everything.
#
# Usage: bash bench/build_ref.sh REF DIR        (as root)
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"

if [ "$#" -ne 2 ]; then
	echo "usage: bash bench/build_ref.sh REF DIR" >&2
	exit 2
fi
ref="$1"
dir="$2"
if [ -e "$dir" ]; then
	echo "$dir already exists" >&2
	exit 2
fi
commit="$(git -C "$top" rev-parse --verify "$ref^{commit}")"
root="$(cd "$PGBIN/../../../../.." && pwd)"

install_missing
mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" \
	"$dir/usr/include" "$dir/src"
cp -a "$root/usr/lib/postgresql/$PG_MAJOR" "$dir/usr/lib/postgresql/"
cp -a "$root/usr/share/postgresql/$PG_MAJOR" "$dir/usr/share/postgresql/"
cp -a "$root/usr/include/postgresql" "$dir/usr/include/"
git -C "$top" archive "$commit" | tar -x -C "$dir/src"
pgbin="$dir/usr/lib/postgresql/$PG_MAJOR/bin"
if ! { make -s -C "$dir/src" PG_CONFIG="$pgbin/pg_config" &&
	make -s -C "$dir/src" PG_CONFIG="$pgbin/pg_config" install; } \
	>"$dir/build.log" 2>&1; then
	echo "# building $ref ($commit) failed:" >&2
	sed 's/^/#   /' "$dir/build.log" >&2
	exit 1
fi
echo "$pgbin"
