#!/bin/sh
# Redis with a password (REDIS_PASSWORD, required) read from a config file, not the command line.
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
case "$REDIS_PASSWORD" in *[\"\\]*) echo "REDIS_PASSWORD must not contain double quotes or backslashes" >&2; exit 2;; esac
conf=$(mktemp)
printf 'bind 0.0.0.0\nprotected-mode no\nport 6379\ndir /data\nappendonly no\nrequirepass "%s"\n' "$REDIS_PASSWORD" > "$conf"
exec redis-server "$conf"
