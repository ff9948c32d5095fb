"""One settings object, read from the environment.

The names are the deployment document's where they still mean the same; see
``DESIGN.md``. With no WhatsApp credentials at all the app runs in *dev mode*: replies
go to a local sandbox (shown by the simulator page and ``jastipin chat``) instead of
the Graph API.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from services import tier

DEFAULT_WA_API_BASE = "https://graph.facebook.com"
LOOPBACK = "127.0.0.1"
# dev mode's stand-in for the Graph API's media endpoints, served by the API itself
# (bot/devchat/graph.py): what the simulator's photos are downloaded from
DEV_GRAPH_PATH = "/dev/graph"


DEFAULT_WA_MEDIA_HOSTS = ("lookaside.fbsbx.com",)


class ConfigError(Exception):
    """The environment does not describe a configuration we can start with."""


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value not in (None, ""):
            return value
    return None


def _int(env: Mapping[str, str], name: str, default: int, *aliases: str) -> int:
    raw = _first(env, name, *aliases)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _first(env, name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _metrics_port(env: Mapping[str, str]) -> int | None:
    if _first(env, "METRICS_PORT") is None:
        return None
    port = _int(env, "METRICS_PORT", 0)
    if not 0 <= port <= 65535:
        raise ConfigError(f"METRICS_PORT must be a port number (0: off), got {port}")
    return port


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0")
    return value


def _backup_keep_days(env: Mapping[str, str]) -> int:
    days = _int(env, "BACKUP_KEEP_DAYS", 30)
    if days < 1:
        raise ConfigError(f"BACKUP_KEEP_DAYS must be 1 or more days, got {days}")
    return days


def _retention_days(env: Mapping[str, str]) -> int:
    days = _int(env, "INBOX_RETENTION_DAYS", 7)
    if days < 1:
        raise ConfigError(
            "INBOX_RETENTION_DAYS must be at least 1: Meta redelivers a webhook for up to "
            "a day, and a unit deleted sooner would be handled twice"
        )
    return days


def _hosts(raw: str | None) -> tuple[str, ...]:
    """Comma-separated host names, lower-cased."""
    return tuple(h.strip().lower() for h in (raw or "").split(",") if h.strip())


def _networks(raw: str | None) -> tuple[str, ...]:
    """``ADMIN_ALLOWED_IPS``: comma-separated addresses or CIDR networks, normalised."""
    out = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        try:
            out.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ConfigError(
                f"ADMIN_ALLOWED_IPS: {part.strip()!r} is not an address or a network "
                "(write e.g. 10.0.0.0/8, 192.0.2.7)"
            ) from None
    return tuple(out)


def _decode_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(
            "PII_ENCRYPTION_KEY must be 32 random bytes, base64-encoded "
            "(make one with: python -c 'import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')"
        )
    return key


def _dev_key(data_dir: Path) -> bytes:
    """A per-checkout random key for dev mode, kept beside the SQLite file."""
    path = data_dir / "pii.key"
    if path.exists():
        return _read_key_file(path)
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    key = secrets.token_bytes(32)
    # created 0600 from the first byte: never readable by others, not even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(key).decode())
    return key


def _read_key_file(path: Path) -> bytes:
    """The PII key from a file only its owner can read; a looser file is refused."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read the PII key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"the PII key file {path} can be read by other users of this machine "
            f"(mode {mode & 0o777:o}); anyone who reads it can decrypt every phone number "
            f"and address. Make it private with: chmod 600 {path}"
        )
    return _decode_key(path.read_text().strip())


def _crash_marker(env: Mapping[str, str], token: str | None) -> str | None:
    """JASTIPIN_TEST_CRASH_MARKER, only in a development or test environment."""
    app_env = _first(env, "APP_ENV", "NODE_ENV") or ("production" if token else "development")
    if app_env.lower() not in ("development", "test"):
        return None
    return _first(env, "JASTIPIN_TEST_CRASH_MARKER")


def is_loopback(host: str | None) -> bool:
    """Is ``host`` (an address or ``localhost``) this machine's loopback interface?"""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the app reads from its environment, checked once at start-up."""

    port: int = 8000
    host: str = "127.0.0.1"
    data_dir: Path = Path("var")
    database_url: str = "sqlite+aiosqlite:///var/jastipin.db"
    redis_url: str | None = None
    queue_prefix: str = "jastipin"
    worker_concurrency: int = 4
    wa_access_token: str | None = dataclasses.field(default=None, repr=False)
    wa_phone_id: str = "dev-phone-id"
    wa_app_secret: str | None = dataclasses.field(default=None, repr=False)
    wa_verify_token: str | None = dataclasses.field(default=None, repr=False)
    wa_api_base: str = DEFAULT_WA_API_BASE
    # hosts of Meta's media CDN a media URL may point to (HTTPS only); the access token
    # goes nowhere else but WA_API_BASE's origin
    wa_media_hosts: tuple[str, ...] = DEFAULT_WA_MEDIA_HOSTS
    wa_business_number: str = "6281100009999"
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = dataclasses.field(default=None, repr=False)
    s3_secret_key: str | None = dataclasses.field(default=None, repr=False)
    s3_bucket: str | None = None
    s3_backup_bucket: str | None = None
    # the backups' own store (RUNBOOK F): another provider or account than the media's,
    # with write-only credentials; each unset one is the media store's (backup_store())
    s3_backup_endpoint_url: str | None = None
    s3_backup_access_key: str | None = dataclasses.field(default=None, repr=False)
    s3_backup_secret_key: str | None = dataclasses.field(default=None, repr=False)
    # requested on every object put (S3_SERVER_SIDE_ENCRYPTION; "" for a store that
    # refuses the header)
    s3_server_side_encryption: str = "AES256"
    export_retention_hours: float = 24.0  # recaps and exports are deleted after this
    media_dir: Path = Path("var/media")
    pii_key: bytes = dataclasses.field(default=b"\0" * 32, repr=False)
    jwt_secret: str | None = dataclasses.field(default=None, repr=False)
    jwt_refresh_secret: str | None = dataclasses.field(default=None, repr=False)
    sentry_dsn: str | None = dataclasses.field(default=None, repr=False)
    # Sentry's environment (APP_ENV, or the document's NODE_ENV); default: "development"
    # in dev mode, else "production"
    app_env: str = "production"
    # `Authorization: Bearer <token>` for GET /metrics; without one, loopback peers only
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    # `jastipin worker` / `jastipin scheduler` serve GET /metrics on their own port
    # (None: 9101 for the worker, 9102 for the scheduler; 0: not at all), on this host
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # how often those processes refresh the gauges read from the database and the broker
    # (outbox pending and lag, queue depth)
    metrics_refresh_seconds: float = 15.0
    broadcast_rate_limit: float = 20.0
    # a broadcast dispatched or sending whose fan-out made no progress (no recipient
    # queued) for this long is dispatched again: its Dramatiq message was lost
    broadcast_stall_seconds: float = 120.0
    broadcast_number_cap: int = 80  # sends per second for the number: replies + broadcasts
    # of each second's cap, kept for replies (broadcasts never use it); None: the default
    reply_reserve: int | None = None
    cost_estimator_rate: int = 500
    public_base_url: str = "http://127.0.0.1:8000"
    # seconds a browser may keep a short link's redirect (``Cache-Control: private``, so
    # no shared cache answers in our place and every person's first click is counted)
    worker_cache_ttl: int = 300
    outbox_poll_seconds: float = 0.1
    # handled webhook units (personal data) are deleted this many days after arrival
    inbox_retention_days: int = 7
    # a claimed row is someone's for this long; one left "sending" by a crashed worker is
    # confirmed from Meta's status webhook, or sent again this much later without one
    outbox_lease_seconds: float = 60.0
    outbox_resend_grace_seconds: float = 120.0
    outbox_batch: int = 50
    outbox_lanes: int = 4  # concurrent claim-send-record loops per process
    inbox_sweep_seconds: float = 5.0
    inbox_inline: bool = True
    # False: the API only processes and leaves sending to `jastipin worker` processes
    # (on a small box the second core sends while the first converses)
    outbox_inline: bool = True
    # SQLite's statements on the event loop's thread (storage/sqlite_inline.py); 0: on a
    # thread per connection, as aiosqlite does
    sqlite_inline: bool = True
    log_level: str = "INFO"
    # test-only (JASTIPIN_TEST_CRASH_MARKER, honoured when APP_ENV is "development" or
    # "test"): a text message containing it kills the process that handles it, to prove
    # that a poison unit is parked after its attempts (tests/reliability/test_poison_unit)
    test_crash_marker: str | None = None
    # per person (services/ratelimit.py): messages answered per window of this many
    # seconds (by Meta's timestamps); the next gets one "slow down", later ones in the
    # window are dropped silently. 0 turns the limit off.
    user_rate_limit: int = 20
    user_rate_window_seconds: float = 10.0
    # TANYA questions one buyer may relay to a trip's jastiper per 24 hours (0: no cap)
    questions_per_day: int = 10
    # addresses/networks allowed to reach /admin/queue (ADMIN_ALLOWED_IPS); empty: any
    admin_allowed_ips: tuple[str, ...] = ()
    # `jastipin backup` (RUNBOOK F): where backups are written, and how many days of
    # them are kept there and in S3_BACKUP_BUCKET
    backup_dir: Path = Path("var/backups")
    backup_keep_days: int = 30

    def backup_store(self) -> tuple[str | None, str | None, str | None]:
        """Endpoint, access key and secret of the backups' store (S3_BACKUP_*, each
        falling back to the media store's)."""
        return (
            self.s3_backup_endpoint_url or self.s3_endpoint_url,
            self.s3_backup_access_key or self.s3_access_key,
            self.s3_backup_secret_key or self.s3_secret_key,
        )

    @property
    def dev_mode(self) -> bool:
        """No WhatsApp credentials: replies go to the local sandbox."""
        return self.wa_access_token is None

    @property
    def signatures_checked(self) -> bool:
        """Webhooks must carry Meta's signature (``WA_APP_SECRET`` is set)."""
        return bool(self.wa_app_secret)

    def listen_host(self, requested: str | None = None) -> str:
        """Where ``jastipin serve`` listens: ``requested`` (else ``HOST``), except that
        while webhook signatures are not checked anyone who can reach the port could
        pose as Meta, so then only this machine may: the loopback address."""
        host = requested or self.host
        if self.signatures_checked or is_loopback(host):
            return host
        return LOOPBACK

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check the environment; raise :class:`ConfigError` with a reason."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("JASTIPIN_DATA_DIR", "var"))
        token = _first(env, "WA_ACCESS_TOKEN")
        app_secret = _first(env, "WA_APP_SECRET")
        phone_id = _first(env, "WA_PHONE_ID")
        if token and not app_secret:
            raise ConfigError(
                "WA_ACCESS_TOKEN is set but WA_APP_SECRET is not: without the app secret "
                "the webhook cannot check Meta's signature, so the bot refuses to start."
            )
        if token and not phone_id:
            raise ConfigError("WA_ACCESS_TOKEN is set but WA_PHONE_ID is not.")
        if token and not _first(env, "WA_VERIFY_TOKEN"):
            raise ConfigError(
                "WA_ACCESS_TOKEN is set but WA_VERIFY_TOKEN is not: Meta's webhook "
                "verification would fail."
            )
        raw_key = _first(env, "PII_ENCRYPTION_KEY")
        key_file = _first(env, "PII_ENCRYPTION_KEY_FILE")
        if raw_key:
            pii_key = _decode_key(raw_key)
        elif key_file:
            pii_key = _read_key_file(Path(key_file))
        elif token:
            raise ConfigError(
                "PII_ENCRYPTION_KEY (or PII_ENCRYPTION_KEY_FILE) is required outside dev "
                "mode: phone numbers, names and addresses are encrypted at rest."
            )
        else:
            pii_key = _dev_key(data_dir)
        database_url = _first(env, "DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir}/jastipin.db"
        database_url = _normalise_db_url(database_url)
        s3_endpoint = _first(env, "S3_ENDPOINT_URL")
        account = _first(env, "CF_R2_ACCOUNT_ID")
        if not s3_endpoint and account:
            s3_endpoint = f"https://{account}.r2.cloudflarestorage.com"
        port = _int(env, "PORT", 8000)
        rate = _float(env, "BROADCAST_RATE_LIMIT", 20.0)
        if rate <= 0:
            raise ConfigError("BROADCAST_RATE_LIMIT must be greater than 0")
        cap = _int(env, "BROADCAST_NUMBER_CAP", 80)
        if cap < 1:
            raise ConfigError("BROADCAST_NUMBER_CAP must be at least 1")
        reply_reserve = _int(env, "BROADCAST_REPLY_RESERVE", tier.default_reply_reserve(cap))
        if not 0 <= reply_reserve < cap:
            raise ConfigError(
                "BROADCAST_REPLY_RESERVE must be at least 0 and less than BROADCAST_NUMBER_CAP "
                "(broadcasts get what the reserve leaves of each second)"
            )

        user_rate_limit = _int(env, "USER_RATE_LIMIT", 20)
        user_rate_window = _float(env, "USER_RATE_WINDOW_SECONDS", 10.0)
        questions_per_day = _int(env, "QUESTIONS_PER_DAY", 10)
        if user_rate_limit < 0 or questions_per_day < 0:
            raise ConfigError("USER_RATE_LIMIT and QUESTIONS_PER_DAY must be 0 (off) or more")
        if user_rate_window <= 0:
            raise ConfigError("USER_RATE_WINDOW_SECONDS must be greater than 0")
        worker_cache_ttl = _int(env, "WORKER_CACHE_TTL", 300)
        if worker_cache_ttl < 0:
            raise ConfigError("WORKER_CACHE_TTL must be 0 (no caching) or more seconds")
        return cls(
            port=port,
            host=env.get("HOST", "127.0.0.1"),
            data_dir=data_dir,
            database_url=database_url,
            redis_url=_first(env, "REDIS_URL"),
            queue_prefix=_first(env, "QUEUE_PREFIX", "BULLMQ_PREFIX") or "jastipin",
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", 4, "BULLMQ_CONCURRENCY"),
            wa_access_token=token,
            wa_phone_id=phone_id or "dev-phone-id",
            wa_app_secret=app_secret,
            wa_verify_token=_first(env, "WA_VERIFY_TOKEN"),
            wa_api_base=(_first(env, "WA_API_BASE") or _default_api_base(token, port)).rstrip("/"),
            wa_media_hosts=_hosts(_first(env, "WA_MEDIA_HOSTS")) or DEFAULT_WA_MEDIA_HOSTS,
            wa_business_number=_first(env, "WA_BUSINESS_NUMBER") or "6281100009999",
            s3_endpoint_url=s3_endpoint,
            s3_access_key=_first(env, "CF_R2_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            s3_secret_key=_first(env, "CF_R2_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
            s3_bucket=_first(env, "CF_R2_BUCKET", "S3_BUCKET"),
            s3_backup_bucket=_first(env, "S3_BACKUP_BUCKET"),
            s3_backup_endpoint_url=_first(env, "S3_BACKUP_ENDPOINT_URL"),
            s3_backup_access_key=_first(env, "S3_BACKUP_ACCESS_KEY_ID"),
            s3_backup_secret_key=_first(env, "S3_BACKUP_SECRET_ACCESS_KEY"),
            s3_server_side_encryption=env.get("S3_SERVER_SIDE_ENCRYPTION", "AES256"),
            export_retention_hours=_positive(env, "EXPORT_RETENTION_HOURS", 24.0),
            media_dir=Path(_first(env, "MEDIA_DIR") or data_dir / "media"),
            pii_key=pii_key,
            jwt_secret=_first(env, "JWT_SECRET"),
            jwt_refresh_secret=_first(env, "JWT_REFRESH_SECRET"),
            sentry_dsn=_first(env, "SENTRY_DSN"),
            app_env=_first(env, "APP_ENV", "NODE_ENV")
            or ("production" if token else "development"),
            metrics_token=_first(env, "METRICS_TOKEN"),
            metrics_port=_metrics_port(env),
            metrics_host=_first(env, "METRICS_HOST") or "127.0.0.1",
            metrics_refresh_seconds=_positive(env, "METRICS_REFRESH_SECONDS", 15.0),
            broadcast_rate_limit=rate,
            broadcast_stall_seconds=_float(env, "BROADCAST_STALL_SECONDS", 120.0),
            broadcast_number_cap=cap,
            reply_reserve=reply_reserve,
            cost_estimator_rate=_int(env, "COST_ESTIMATOR_RATE", 500),
            public_base_url=(_first(env, "PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}").rstrip(
                "/"
            ),
            worker_cache_ttl=worker_cache_ttl,
            outbox_poll_seconds=_float(env, "OUTBOX_POLL_SECONDS", 0.1),
            inbox_retention_days=_retention_days(env),
            outbox_lease_seconds=_float(env, "OUTBOX_LEASE_SECONDS", 60.0),
            outbox_resend_grace_seconds=_float(env, "OUTBOX_RESEND_GRACE_SECONDS", 120.0),
            outbox_batch=_int(env, "OUTBOX_BATCH", 50),
            outbox_lanes=_int(env, "OUTBOX_LANES", 4),
            inbox_sweep_seconds=_float(env, "INBOX_SWEEP_SECONDS", 5.0),
            inbox_inline=(_first(env, "INBOX_INLINE") or "1").lower() not in ("0", "false", "no"),
            outbox_inline=(_first(env, "OUTBOX_INLINE") or "1").lower()
            not in ("0", "false", "no"),
            sqlite_inline=(_first(env, "SQLITE_INLINE") or "1").lower()
            not in ("0", "false", "no"),
            log_level=(_first(env, "LOG_LEVEL") or "INFO").upper(),
            test_crash_marker=_crash_marker(env, token),
            user_rate_limit=user_rate_limit,
            user_rate_window_seconds=user_rate_window,
            questions_per_day=questions_per_day,
            admin_allowed_ips=_networks(_first(env, "ADMIN_ALLOWED_IPS")),
            backup_dir=Path(_first(env, "BACKUP_DIR") or data_dir / "backups"),
            backup_keep_days=_backup_keep_days(env),
        )


def _default_api_base(token: str | None, port: int) -> str:
    """Meta's Graph API; in dev mode (no token) the API's own stand-in on ``PORT``."""
    return DEFAULT_WA_API_BASE if token else f"http://{LOOPBACK}:{port}{DEV_GRAPH_PATH}"


def _normalise_db_url(url: str) -> str:
    """Accept the deployment document's plain URLs and pick the async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url
