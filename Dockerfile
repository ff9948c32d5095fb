# syntax=docker/dockerfile:1
# Jastipin image: one image for every process (api, worker, scheduler, migrate).
#   docker build -t jastipin:local .
#   docker run --rm -p 127.0.0.1:8000:8000 -e WA_APP_SECRET=<random> jastipin:local
#     (embedded default: SQLite, dev mode; without WA_APP_SECRET webhooks are unsigned and
#     `jastipin serve` listens on the container's loopback only)
# The process is chosen by the command: `jastipin serve` (default), `jastipin worker`,
# `jastipin scheduler`, `jastipin db upgrade`. Configuration comes from the environment
# only (see docs/RUNBOOK.md); nothing secret is baked into the image.

# The base image is pinned to one Python patch release on one Debian release (bookworm),
# so a rebuild months later gets the same interpreter; bump it deliberately (and add the
# image digest, `@sha256:…`, where the registry can be reached when building).
#
# PYTHON_IMAGE may also be a plain Debian bookworm image with no Python yet: the test suite
# builds one with debootstrap where no registry can be reached (tests/test_image.py), and
# the stages below then install Debian's python3 (3.11 in bookworm) first.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the locked dependencies, then the package, into a virtualenv --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN command -v python3 >/dev/null 2>&1 || { apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*; }
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the lock file with hashes: this layer is rebuilt only when
# requirements.lock changes, not on every code change.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# Then the code (.dockerignore keeps .venv, var, .git, tests, caches and .env out).
COPY pyproject.toml README.md ./
COPY admin_web ./admin_web
COPY bot ./bot
COPY flows ./flows
COPY locales ./locales
COPY services ./services
COPY storage ./storage
RUN pip install --no-deps . \
    && python -c "import bot.app, storage.migrate, locales" \
    && jastipin --help > /dev/null

# --- runtime: the virtualenv only, run as an unprivileged user -------------------------
FROM ${PYTHON_IMAGE}
# the commit this image was built from: Sentry's release and /health's version
ARG GIT_COMMIT=""
ENV JASTIPIN_COMMIT=${GIT_COMMIT} \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    JASTIPIN_DATA_DIR=/data
RUN command -v python3 >/dev/null 2>&1 || { apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*; }
RUN groupadd --system --gid 10001 jastipin \
    && useradd --system --uid 10001 --gid jastipin --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin jastipin \
    && mkdir -p /app /data \
    && chown jastipin:jastipin /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER jastipin
EXPOSE 8000
# No curl in the slim image: python's urllib raises on a refused connection or a 503.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["jastipin", "serve"]
