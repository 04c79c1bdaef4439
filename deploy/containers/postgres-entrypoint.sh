#!/bin/sh
# Creates the cluster on first start (POSTGRES_USER with POSTGRES_PASSWORD owning
# POSTGRES_DB), then runs PostgreSQL in the foreground on 127.0.0.1:POSTGRES_PORT.
set -eu
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "postgres-entrypoint: POSTGRES_PASSWORD is empty; set it (no default password)" >&2
  exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  if [ "$POSTGRES_DB" != postgres ]; then
    postgres --single -D "$PGDATA" -j postgres >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB" OWNER "$POSTGRES_USER";
SQL
  fi
  echo "postgres-entrypoint: created the cluster in $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$POSTGRES_PORT" \
  -c unix_socket_directories=/var/run/postgresql
