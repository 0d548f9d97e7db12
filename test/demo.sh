#!/usr/bin/env bash
# test/demo.sh: show emissions at work in a throwaway cluster.
#
# Installs what is missing, builds and installs the extension, starts a
# cluster with the library preloaded, creates the database "demo" with the
# extension in it, and runs test/demo.sql through psql, echoing each query
# before its result.  The cluster is stopped and removed at the end.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"

echo "# building and installing"
install_missing
build_install
cluster_start "shared_preload_libraries = 'emissions'"
export PGDATABASE=demo
psql -X -q -d postgres -c 'CREATE DATABASE demo'
psql -X -a -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'
psql -X -a -v ON_ERROR_STOP=1 -f "$top/test/demo.sql"
cluster_stop "$CLUSTER"
