#!/usr/bin/env bash
# test/pgenv.sh: run a command in a Debian environment with PostgreSQL N.
#
# Usage: bash test/pgenv.sh VERSION -- COMMAND [ARG...]
#
# VERSION is 15 (Debian 12 "bookworm"), 17 (Debian 13 "trixie") or 18
# (Debian unstable "sid"): each is Debian's own binary package of that
# server, built for that release's C library, so each runs in a minimal
# chroot of its release.  The chroot is made once, with debootstrap
# --variant=minbase, and cached in /var/cache/emissions/pgVERSION: it holds
# postgresql-VERSION, its server headers and what the test suite runs (a C
# compiler, make, libpq, python3 with psycopg, node with npm; for
# emissions_relay the NATS C client, libcurl, OpenSSL and nats-server).  A
# chroot is built in a temporary directory and renamed only when complete, so an
# interrupted creation leaves nothing that looks usable; the next call
# starts it again.  The package patch releases are whatever the release has
# when the chroot is made (remove the directory to take newer ones).
#
# COMMAND runs as root inside the chroot, in the current directory, with the
# clone of this repository bind-mounted at the same path, and /proc, /dev,
# /sys and /tmp mounted from the host.  All of it happens in a private mount
# namespace, and an EXIT trap unmounts everything, so nothing stays mounted
# under /var/cache/emissions.  A server COMMAND left running inside is
# stopped by its data directory on the way out, and the exit status is then
# non-zero.  The exit status is COMMAND's otherwise.
set -euo pipefail

CACHE=/var/cache/emissions
MIRROR=http://deb.debian.org/debian
# Bump when the package list or the sources change: an older chroot is
# brought up to date in place.
LAYOUT=3

usage() {
	echo "usage: bash test/pgenv.sh VERSION -- COMMAND [ARG...]" >&2
	echo "VERSION: 15 (Debian 12), 17 (Debian 13) or 18 (Debian unstable)" >&2
	exit 2
}

[ "$#" -ge 3 ] && [ "$2" = "--" ] || usage
version="$1"
shift 2
case "$version" in
15) suite=bookworm ;;
17) suite=trixie ;;
18) suite=sid ;;
*) usage ;;
esac
[ "$(id -u)" -eq 0 ] || exec sudo bash "$0" "$version" -- "$@"

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$CACHE/pg$version"
packages=(
	"postgresql-$version" "postgresql-server-dev-$version" postgresql-client
	make gcc libc6-dev libpq-dev ca-certificates python3 python3-psycopg
	nodejs npm procps libnats-dev libcurl4-openssl-dev libssl-dev pkgconf
	nats-server
)
stamp="layout $LAYOUT: ${packages[*]}"

# Print a message prefixed with the script's name.
say() {
	echo "# pgenv $version: $*" >&2
}

# Fail unless nothing is mounted at or under DIR (so it is safe to delete).
nothing_mounted_under() {
	if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 }
		END { exit !found }' /proc/self/mountinfo; then
		say "something is still mounted under $1; not touching it"
		return 1
	fi
}

# Run "apt-get ARG..." inside the chroot ROOT (its mounts already made).
chroot_apt() {
	local dir="$1"
	shift
	chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		apt-get -q -y -o Acquire::Check-Valid-Until=false \
		-o Dpkg::Use-Pty=0 "$@"
}

# Mount what a command in the chroot DIR needs; record each mount point in
# MOUNTED (unmounted in reverse order by unmount_all).
MOUNTED=()
mount_into() {
	local dir="$1" src
	for src in /proc /sys /dev /tmp "$top"; do
		mkdir -p "$dir$src"
		case "$src" in
		/proc) mount -t proc proc "$dir/proc" ;;
		/sys) mount --rbind -o ro /sys "$dir/sys" 2>/dev/null ||
			mount --rbind /sys "$dir/sys" ;;
		/dev) mount --rbind /dev "$dir/dev" ;;
		*) mount --bind "$src" "$dir$src" ;;
		esac
		MOUNTED+=("$dir$src")
	done
	# The host's name servers, and the certificate authorities it trusts
	# (a proxy on the way to a package registry may need one of its own).
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	if [ -s /etc/ssl/certs/ca-certificates.crt ] &&
		[ -d "$dir/etc/ssl/certs" ]; then
		cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
	fi
}

# EXIT trap: unmount everything mounted here, innermost first.
unmount_all() {
	local i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount -R "${MOUNTED[i]}" 2>/dev/null ||
			umount -R -l "${MOUNTED[i]}" 2>/dev/null || true
	done
	MOUNTED=()
}

# Make the chroot for $version in a temporary directory, then rename it.
create() {
	local tmp start elapsed
	start="$(date +%s)"
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap \
			>/dev/null 2>&1 || {
			apt-get update -qq &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
					debootstrap >/dev/null
		}
	fi
	for tmp in "$root".new.*; do
		[ -e "$tmp" ] || continue
		nothing_mounted_under "$tmp" && rm -rf "$tmp"
	done
	tmp="$(mktemp -d "$root.new.XXXXXX")"
	chmod 755 "$tmp" # the chroot's /: every user must get through it
	say "making a Debian $suite chroot in $tmp (log: $tmp.log)"
	if ! debootstrap --variant=minbase "$suite" "$tmp" "$MIRROR" \
		>"$tmp.log" 2>&1; then
		tail -n 20 "$tmp.log" >&2
		say "debootstrap failed (log: $tmp.log)"
		return 1
	fi
	say "debootstrap took $(($(date +%s) - start)) s"
	provision "$tmp" || return 1
	# Complete: only now does it get the name that marks it usable.
	elapsed=$(($(date +%s) - start))
	echo "$(date -u +%FT%TZ) $elapsed s" >"$tmp/etc/emissions-pgenv.created"
	mv "$tmp" "$root"
	say "made in $elapsed s ($(du -sm "$root" | cut -f1) MB)"
}

# Install the packages in the chroot DIR (new or older) and write the stamp.
provision() {
	local dir="$1" status=0
	# No cluster made or started by the package scripts: the tests make
	# their own, and nothing may run from the cache.
	mkdir -p "$dir/etc/postgresql-common" "$dir/usr/sbin"
	echo "create_main_cluster = false" \
		>"$dir/etc/postgresql-common/createcluster.conf"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	echo 'Acquire::Check-Valid-Until "false";' \
		>"$dir/etc/apt/apt.conf.d/99emissions"
	# A released suite's users also have its updates and security fixes.
	echo "deb $MIRROR $suite main" >"$dir/etc/apt/sources.list"
	if [ "$suite" != sid ]; then
		echo "deb $MIRROR $suite-updates main" >>"$dir/etc/apt/sources.list"
		echo "deb http://deb.debian.org/debian-security $suite-security main" \
			>>"$dir/etc/apt/sources.list"
	fi
	mount_into "$dir"
	say "installing ${packages[*]}"
	{ chroot_apt "$dir" update && chroot_apt "$dir" dist-upgrade &&
		chroot_apt "$dir" install --no-install-recommends "${packages[@]}" &&
		chroot_apt "$dir" clean; } >>"$dir.log" 2>&1 || status=$?
	unmount_all
	if [ "$status" -ne 0 ]; then
		tail -n 20 "$dir.log" >&2
		say "installing the packages failed (log: $dir.log)"
		return 1
	fi
	rm -f "$dir.log"
	echo "$stamp" >"$dir/etc/emissions-pgenv"
}

# Stop what COMMAND left running: every process of this run's mount
# namespace but this script.  A PostgreSQL server is stopped by its data
# directory (pg_ctl -m immediate), anything else is killed.  Prints how
# many processes were left.
stop_leftovers() {
	local pid data n=0 ns
	ns="$(readlink /proc/$$/ns/mnt)"
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] || continue
		[ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
		[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] || continue
		n=$((n + 1))
		data="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
			sed -n '/^-D$/{n;p;q}')"
		if [ -n "$data" ] && [ -f "$root$data/postmaster.pid" ] &&
			[ "$(head -n 1 "$root$data/postmaster.pid")" = "$pid" ]; then
			say "stopping a server left running in $data"
			chroot "$root" runuser -u postgres -- \
				"/usr/lib/postgresql/$version/bin/pg_ctl" -D "$data" \
				-m immediate -w stop >/dev/null 2>&1 && continue
		fi
		say "killing process $pid left running: $(tr '\0' ' ' \
			<"/proc/$pid/cmdline" 2>/dev/null | cut -c 1-80)"
		kill -KILL "$pid" 2>/dev/null || true
	done
	echo "$n"
}

# The body, run in a private mount namespace (see below).
run_inside() {
	local status=0 left
	# Runs share the chroot (a shared lock); making or updating it takes
	# the lock alone.
	exec 9>"$CACHE/pg$version.lock"
	flock -s 9
	if [ ! -d "$root" ] ||
		[ "$(cat "$root/etc/emissions-pgenv" 2>/dev/null)" != "$stamp" ]; then
		flock -u 9
		flock 9
		if [ ! -d "$root" ]; then
			create || exit 1
		elif [ "$(cat "$root/etc/emissions-pgenv" 2>/dev/null)" != "$stamp" ]; then
			say "bringing $root up to date"
			provision "$root" || exit 1
		fi
		flock -s 9
	fi
	trap unmount_all EXIT
	mount_into "$root"
	chroot "$root" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 EMISSIONS_PGENV="$version" \
		bash -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' \
		pgenv "$PWD" "$@" 9>&- || status=$?
	left="$(stop_leftovers)"
	[ "$left" -eq 0 ] || status=1
	unmount_all
	exit "$status"
}

if [ "${1:-}" = "--in-namespace" ]; then
	shift
	run_inside "$@"
fi
mkdir -p "$CACHE"
# A private mount namespace: whatever happens to this script, no mount made
# here outlives it or shows outside it.
exec unshare --mount --propagation private \
	bash "$0" "$version" -- --in-namespace "$@"
