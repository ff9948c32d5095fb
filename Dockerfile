# syntax=docker/dockerfile:1
# Jastipin image: one image for every process (api, worker, scheduler, migrate).
#   docker build -t jastipin:local .
#   docker run --rm -p 127.0.0.1:8000:8000 -e WA_APP_SECRET=<random> jastipin:local
#     (embedded default: SQLite, dev mode; without WA_APP_SECRET webhooks are unsigned and
#     `jastipin serve` listens on the container's loopback only)
# The process is chosen by the command: `jastipin serve` (default), `jastipin worker`,
# `jastipin scheduler`, `jastipin db upgrade`. Configuration comes from the environment
# only (see docs/RUNBOOK.md); nothing secret is baked into the image.

# --- build: install the package and its dependencies into a virtualenv -----------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps .venv, var, .git, tests, caches and any .env out of the context.
COPY . .
RUN pip install . \
    && python -c "import bot.app, storage.migrate, locales" \
    && jastipin --help > /dev/null

# --- runtime: the virtualenv only, run as an unprivileged user -------------------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    JASTIPIN_DATA_DIR=/data
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
