#!/usr/bin/env bash
# Dump the Jastipin database to a dated custom-format file and prune old dumps.
#
#   DATABASE_URL=postgresql://user:pass@host:5432/jastipin ops/backup/pg_backup.sh [DIR]
#
# DIR defaults to $BACKUP_DIR, else /var/backups/jastipin. Dumps older than
# $BACKUP_KEEP_DAYS days (default 30) are deleted. The app's URL form
# (postgresql+asyncpg://…) is accepted and turned into a libpq URL. Prints the path of
# the new dump. Schedule it (cron, a systemd timer, or the compose `backup` service) and
# copy the directory off the host: see docs/RUNBOOK.md, section F.
set -euo pipefail

die() {
  echo "pg_backup: $*" >&2
  exit 1
}

[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set"
url="$DATABASE_URL"
case "$url" in
  postgresql+asyncpg://*) url="postgresql://${url#postgresql+asyncpg://}" ;;
  postgres://*) url="postgresql://${url#postgres://}" ;;
  postgresql://*) ;;
  *) die "DATABASE_URL is not a PostgreSQL URL (SQLite is backed up by copying the file)" ;;
esac

backup_dir="${1:-${BACKUP_DIR:-/var/backups/jastipin}}"
keep_days="${BACKUP_KEEP_DAYS:-30}"
[[ "$keep_days" =~ ^[0-9]+$ ]] || die "BACKUP_KEEP_DAYS must be a whole number of days"

mkdir -p "$backup_dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$backup_dir/jastipin-$stamp.dump"
partial="$backup_dir/.jastipin-$stamp.dump.partial"
trap 'rm -f "$partial"' EXIT

pg_dump --format=custom --compress=6 --no-owner --no-privileges \
  --file="$partial" --dbname="$url"
# A dump pg_restore cannot list is not a backup.
pg_restore --list "$partial" > /dev/null
chmod 600 "$partial"
mv "$partial" "$target"

find "$backup_dir" -maxdepth 1 -type f -name 'jastipin-*.dump' -mmin +"$((keep_days * 1440))" \
  -print -delete | sed 's/^/pg_backup: pruned /' >&2

echo "$target"
