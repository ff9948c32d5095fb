#!/usr/bin/env bash
# Deploy one image, by digest, on the compose host — runbook A in order:
#
#   ops/deploy/deploy.sh ghcr.io/<owner>/jastipin@sha256:<digest>
#
# backup → check predeploy → migrate → deploy that digest → smoke (health within a
# deadline, then a signed JOIN answered end to end) → check postdeploy. When smoke fails
# the previous digest (remembered in .deployed-image) is started again and the script
# exits 1. Run from the compose directory (JASTIPIN_DIR, default /srv/jastipin) with its
# .env; SMOKE_PHONE in .env is the test number smoke sends its JOIN as. CI's deploy job
# runs exactly this over ssh (.github/workflows/ci.yml).
set -euo pipefail

die() {
  echo "deploy: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: deploy.sh <image@sha256:digest>"
image="$1"
[[ "$image" == *@sha256:* ]] || die "deploy an image by digest (…@sha256:…), not a tag: $image"
cd "${JASTIPIN_DIR:-/srv/jastipin}"
[[ -f .env ]] || die "no .env in $(pwd)"
deadline_seconds="${HEALTH_DEADLINE_SECONDS:-120}"
smoke_phone="${SMOKE_PHONE:-$(grep -E '^SMOKE_PHONE=' .env | cut -d= -f2- || true)}"
[[ -n "$smoke_phone" ]] || die "set SMOKE_PHONE in .env: the test number smoke sends its JOIN as"
state=.deployed-image
previous="$(cat "$state" 2>/dev/null || true)"

compose() { JASTIPIN_IMAGE="$1" docker compose "${@:2}"; }

healthy() { # the api answers /health with 200 within the deadline
  local image="$1" started
  started=$(date +%s)
  until compose "$image" exec -T api python -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" \
    >/dev/null 2>&1; do
    (($(date +%s) - started < deadline_seconds)) || return 1
    sleep 2
  done
}

echo "deploy: $image (previous: ${previous:-none})"
compose "$image" pull --quiet api
compose "$image" --profile ops build --quiet backup
compose "$image" --profile ops run --rm backup
compose "$image" run --rm --no-deps api jastipin check predeploy
compose "$image" run --rm migrate
compose "$image" up -d --no-build api worker scheduler

if healthy "$image" && compose "$image" exec -T api jastipin check smoke --phone "$smoke_phone"; then
  compose "$image" exec -T api jastipin check postdeploy --hours 0.25
  echo "$image" >"$state"
  echo "deploy: $image is live"
  exit 0
fi

echo "deploy: smoke failed for $image" >&2
if [[ -n "$previous" ]]; then
  echo "deploy: rolling back to $previous" >&2
  # --no-deps: skip `migrate`, which the previous release cannot run on a newer schema
  compose "$previous" up -d --no-build --no-deps api worker scheduler
  healthy "$previous" || echo "deploy: the previous image is not healthy either" >&2
fi
exit 1
