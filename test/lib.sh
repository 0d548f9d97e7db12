# test/lib.sh: shared helpers for the emissions test and demo scripts.
# shellcheck shell=bash
#
# Sourced by test/run.sh, test/demo.sh and test/check_*.sh.  It installs what
# the build needs, builds and installs the extension, and runs throwaway
# clusters of PostgreSQL PG_MAJOR (default 15, Debian 12's own server; on a
# machine without that server, become_root re-runs the calling script in
# test/pgenv.sh's Debian environment for it).  A cluster lives in a mktemp
# directory under /tmp, owned by the postgres OS user (the server refuses to
# run as root): DIR/data is the data directory, DIR holds the unix socket,
# the log (DIR/server.log) and the port (DIR/port).  Clients run as the
# calling user and connect over the socket as the postgres role.  Every
# cluster started here is stopped and removed by an EXIT trap, so nothing is
# left running when a step fails.

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
export PG_MAJOR
# EMISSIONS_PGBIN points at another copy of the same server (a relocated copy
# of /usr/lib/postgresql/N, /usr/share/postgresql/N and the headers), so that
# builds of two work trees can be installed and tested side by side.
PGBIN="${EMISSIONS_PGBIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"
export PATH="$PGBIN:$PATH"
CLUSTERS=()
CLUSTER=""
passed=0
failed=0

# Re-run the calling script as root, and in test/pgenv.sh's environment for
# PG_MAJOR when this machine has no such server; call as: become_root "$@".
become_root() {
	local self
	self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
	[ "$(id -u)" -eq 0 ] ||
		exec sudo env PG_MAJOR="$PG_MAJOR" \
			${EMISSIONS_PGBIN:+EMISSIONS_PGBIN="$EMISSIONS_PGBIN"} bash "$self" "$@"
	[ -x "$PGBIN/postgres" ] || [ -n "${EMISSIONS_PGENV:-}" ] ||
		exec bash "$top/test/pgenv.sh" "$PG_MAJOR" -- \
			env PG_MAJOR="$PG_MAJOR" bash "$self" "$@"
}

# Install with apt-get the packages the build needs, only those missing:
# the server's headers and a compiler; for emissions_relay, the NATS C
# client, libcurl, OpenSSL and pkg-config, and for its tests nats-server,
# python3 (the webhook test receiver) and openssl (certificates).
install_missing() {
	local p missing=()
	for p in "postgresql-server-dev-$PG_MAJOR" make gcc libnats-dev \
		libcurl4-openssl-dev libssl-dev pkgconf nats-server python3 \
		openssl; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	echo "# installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Build and install the extension, then compile test/*.c into test/bin/.
build_install() {
	local c bin="$top/test/bin"
	local make=(make -s -C "$top" PG_CONFIG="$PGBIN/pg_config")
	"${make[@]}" >/dev/null && "${make[@]}" install >/dev/null || return 1
	rm -rf "$bin" && mkdir -p "$bin"
	for c in "$top"/test/*.c; do
		[ -e "$c" ] || continue
		cc -Wall -Werror -O2 -I"$(pg_config --includedir)" "$c" \
			-L"$(pg_config --libdir)" -lpq -o "$bin/$(basename "$c" .c)" ||
			return 1
	done
}

# Install and build unless test/run.sh already did it for this run.
prepare() {
	[ -n "${EMISSIONS_BUILT:-}" ] && return 0
	install_missing && build_install
}

# Run a command as the postgres OS user, from a directory it can read.
as_pg() {
	(cd / && runuser -u postgres -- "$@")
}

# Print a port no local PostgreSQL uses (socket lock file or TCP), from 54320.
free_port() {
	local p=54320
	while compgen -G "/tmp/.s.PGSQL.$p.lock" >/dev/null ||
		compgen -G "/tmp/*/.s.PGSQL.$p.lock" >/dev/null ||
		compgen -G "/var/run/postgresql/.s.PGSQL.$p.lock" >/dev/null ||
		grep -qi "^ *[0-9]*: [0-9A-F]*:$(printf '%04X' "$p") [0-9A-F:]* 0A" \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p"
}

# Make a directory owned by postgres, registered for clean-up, into var $1.
cluster_dir() {
	local dir
	dir="$(mktemp -d /tmp/emissions.XXXXXX)"
	chown postgres: "$dir"
	CLUSTERS+=("$dir")
	printf -v "$1" '%s' "$dir"
}

# Point PGHOST/PGPORT/PGUSER at the cluster in DIR.
cluster_env() {
	PGPORT="$(cat "$1/port")"
	export PGHOST="$1" PGPORT PGUSER=postgres
}

# Start DIR/data (DIR from cluster_dir) on a free port; extra args are
# postgresql.conf lines.  Exports the cluster's client environment.
cluster_launch() {
	local dir="$1" line port
	shift
	port="$(free_port)"
	echo "$port" >"$dir/port"
	for line in "listen_addresses = ''" "unix_socket_directories = '$dir'" \
		"port = $port" "$@"; do
		echo "$line" >>"$dir/data/postgresql.conf"
	done
	if ! as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
		>/dev/null; then
		echo "# cluster in $dir did not start; its log:" >&2
		sed 's/^/#   /' "$dir/server.log" >&2
		return 1
	fi
	cluster_env "$dir"
}

# Create and start a fresh cluster; extra args are postgresql.conf lines.
# Sets CLUSTER to its directory and exports its client environment.
cluster_start() {
	cluster_dir CLUSTER
	if ! as_pg initdb -N -A trust -U postgres -D "$CLUSTER/data" \
		>"$CLUSTER/initdb.log" 2>&1; then
		cat "$CLUSTER/initdb.log" >&2
		return 1
	fi
	cluster_launch "$CLUSTER" "$@"
}

# Print the lines of DIR's server log that show a server process dying of a
# signal, a PANIC or a failed assertion, but for the processes whose PIDs
# DIR/expected_crashes lists (one a line: those a test killed on purpose).
cluster_crashes() {
	local dir="$1" pids=""
	[ -f "$dir/server.log" ] || return 0
	[ -s "$dir/expected_crashes" ] &&
		pids="$(paste -sd '|' "$dir/expected_crashes")"
	grep -E 'terminated by signal|was terminated by|PANIC:|TRAP:' \
		"$dir/server.log" | grep -v -E "\\(PID (${pids:-none})\\)" || true
}

# Stop the cluster whose directory is DIR (by its data directory), report a
# crashed server process in its log as a failed check, and remove it.
cluster_stop() {
	local dir="$1" crashes
	[ -d "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
			true
	fi
	crashes="$(cluster_crashes "$dir")"
	if [ -n "$crashes" ]; then
		not_ok "no server process crashed in the cluster in $dir"
		comment "$crashes"
	fi
	rm -rf "$dir"
}

# EXIT trap: stop and remove every cluster this script started.
cleanup_clusters() {
	local dir
	for dir in ${CLUSTERS[@]+"${CLUSTERS[@]}"}; do
		cluster_stop "$dir"
	done
	CLUSTERS=()
}
trap cleanup_clusters EXIT
trap 'exit 130' INT TERM

# End a check script: stop its clusters (scanning their logs), print the
# TAP plan and return whether every check passed.
done_testing() {
	cleanup_clusters
	echo "1..$((passed + failed))"
	[ "$failed" -eq 0 ]
}

# Print TEXT as TAP comment lines.
comment() {
	# shellcheck disable=SC2001
	sed 's/^/# /' <<<"$1"
}

# Print how many events of TYPE have been delivered, once the worker has
# delivered everything committed so far (in the environment's database).
# (The wait is a statement of its own: a statement reads the log as it was
# when the statement began.)
delivered_count() {
	psql -X -At -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_wait_delivered('60s')" \
		-c "SELECT count(*) FROM emissions_events(0, 2147483647)
			 WHERE type = '$1'" 2>&1 | tail -n 1
}

# Record and print a passing check.
ok() {
	passed=$((passed + 1))
	echo "ok - $*"
}

# Record and print a failing check.
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $*"
}

# Run COMMAND; record DESC as passed if it succeeds: check DESC COMMAND...
check() {
	local desc="$1"
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# Check that ACTUAL equals EXPECTED: check_eq DESC EXPECTED ACTUAL.
check_eq() {
	if [ "$3" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		comment "  expected: $2"
		comment "  got: $3"
	fi
}
