#!/usr/bin/env bash
# Makes a PostgreSQL server available to the tests and prints its URL.
#
# Uses LATCHKEY_TEST_POSTGRES_URL when it answers, else the development and CI
# machines' server (postgres://postgres@127.0.0.1:5432/test); where none
# answers, installs Debian's postgresql when missing and starts a throwaway
# cluster (initdb into a temporary folder, trust auth, a free port), which
# `scripts/postgres.sh stop DIR` stops. Fails loudly; never skips.
#
#   url=$(scripts/postgres.sh start)        # prints the URL; a throwaway cluster's folder on stderr
#   LATCHKEY_PG_THROWAWAY=1 scripts/postgres.sh start   # always a throwaway cluster
set -euo pipefail

die() { echo "postgres: ERROR: $*" >&2; exit 1; }

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  return 1
}

answers() {
  command -v psql >/dev/null 2>&1 || return 1
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

as_postgres() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local url
  [[ "${LATCHKEY_PG_THROWAWAY:-}" == 1 ]] || for url in "${LATCHKEY_TEST_POSTGRES_URL:-}" "postgres://postgres@127.0.0.1:5432/test"; do
    if [[ -n "$url" ]] && answers "$url"; then
      echo "$url"
      return 0
    fi
  done
  if ! bindir >/dev/null; then
    echo "postgres: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2 || die "apt-get update failed"
    apt-get install -y --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
  fi
  local bin dir port
  bin="$(bindir)" || die "initdb not found after installing postgresql"
  dir="$(mktemp -d /tmp/latchkey-pg.XXXXXX)"
  chown postgres: "$dir" 2>/dev/null || true
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null || die "initdb failed"
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$dir/log" >&2; die "the throwaway cluster did not start"; }
  as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test || die "createdb failed"
  echo "$dir" >&2
  echo "postgres://postgres@127.0.0.1:$port/test"
}

stop() {
  local dir="$1" bin
  bin="$(bindir)" || return 0
  [[ -d "$dir/data" ]] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?folder}" ;;
  *) die "usage: scripts/postgres.sh start | stop DIR" ;;
esac
