#!/usr/bin/env bash
# Make sure PostgreSQL server binaries exist. On Debian-like machines where we are root,
# install them; anywhere else, say how, and fail.
set -euo pipefail
if [ -n "${PGHOST:-}" ]; then exit 0; fi  # a server is configured: no local binaries needed
for d in "${SEGMENTS_PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "PostgreSQL server binaries not found: installing postgresql with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, for example:
  Debian/Ubuntu:  sudo apt-get install postgresql-15
  Fedora/RHEL:    sudo dnf install postgresql15-server
  macOS:          brew install postgresql@15
or set PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE to use an existing server.
MSG
exit 1
