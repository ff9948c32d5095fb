#!/usr/bin/env bash
# Prove the newest backup restores: load it into a scratch database on the same server,
# count the rows of `trips` and `alembic_version`, then drop the scratch database.
#
#   DATABASE_URL=postgresql://user:pass@host:5432/jastipin ops/backup/restore_test.sh [DIR|FILE]
#
# DIR defaults to $BACKUP_DIR, else /var/backups/jastipin; the newest jastipin-*.dump in
# it is used. The DATABASE_URL user needs CREATEDB. Set RESTORE_MIN_TRIPS to also fail
# when fewer trips come back than that. Exit status 0 means the restore test passed.
set -euo pipefail

die() {
  echo "restore_test: $*" >&2
  exit 1
}

[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set"
url="$DATABASE_URL"
case "$url" in
  postgresql+asyncpg://*) url="postgresql://${url#postgresql+asyncpg://}" ;;
  postgres://*) url="postgresql://${url#postgres://}" ;;
  postgresql://*) ;;
  *) die "DATABASE_URL is not a PostgreSQL URL" ;;
esac

source_path="${1:-${BACKUP_DIR:-/var/backups/jastipin}}"
if [[ -d "$source_path" ]]; then
  dump=""
  shopt -s nullglob
  for candidate in "$source_path"/jastipin-*.dump; do
    dump="$candidate" # the glob is sorted and the names carry a UTC timestamp
  done
  shopt -u nullglob
  [[ -n "$dump" ]] || die "no jastipin-*.dump in $source_path"
elif [[ -f "$source_path" ]]; then
  dump="$source_path"
else
  die "$source_path is neither a directory nor a file"
fi

# Same server and credentials, another database name (query string kept).
query=""
if [[ "$url" == *"?"* ]]; then
  query="?${url#*\?}"
fi
base="${url%%\?*}"
authority="${base#postgresql://}"
[[ "$authority" == */?* ]] || die "cannot find the database name in DATABASE_URL"
server="postgresql://${authority%%/*}"
scratch="jastipin_restore_test_$(date -u +%Y%m%d%H%M%S)_$$"
scratch_url="$server/$scratch$query"

psql_admin() {
  psql "$url" --no-psqlrc --quiet --set ON_ERROR_STOP=1 "$@"
}

cleanup() {
  psql_admin --command "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" > /dev/null \
    || echo "restore_test: could not drop $scratch, drop it by hand" >&2
}

echo "restore_test: restoring $dump into $scratch"
psql_admin --command "CREATE DATABASE \"$scratch\"" > /dev/null
trap cleanup EXIT

started=$SECONDS
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
  --dbname="$scratch_url" "$dump"
elapsed=$((SECONDS - started))

counts="$(psql "$scratch_url" --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
  --tuples-only --no-align --field-separator=' ' \
  --command 'SELECT (SELECT count(*) FROM trips), (SELECT count(*) FROM alembic_version)')"
read -r trips versions <<< "$counts"
revision="$(psql "$scratch_url" --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
  --tuples-only --no-align --command 'SELECT version_num FROM alembic_version')"

echo "restore_test: trips=$trips alembic_version=$versions revision=$revision" \
  "restore_seconds=$elapsed database=$scratch"
[[ "$versions" == "1" ]] || die "expected exactly one alembic_version row, found $versions"
min_trips="${RESTORE_MIN_TRIPS:-0}"
((trips >= min_trips)) || die "expected at least $min_trips trips, found $trips"
echo "restore_test: OK"
