"""What keeps both panels safe to leave open: the session cookies, CSRF tokens, signed
links, the client address, and the security headers.

One signing key (:func:`signing_key`) is derived with HKDF from ``JWT_SECRET`` when the
deployment sets it, else from the PII key; it signs the CSRF tokens, the proof-image
links and the client-address digests, so all of them survive a restart and hold across
processes. ``JWT_REFRESH_SECRET`` is not needed: sessions live in the database (revoked
there), so there is no refresh token to sign.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from admin_web.keys import SETTINGS, WebSettings
from storage.sqlite_inline import offloaded

SIGN_KEY: web.AppKey[bytes] = web.AppKey("admin_sign_key")
# cookie names are given without their prefix: browsers accept a __Host- cookie only
# with Secure, so plain-HTTP development (PUBLIC_BASE_URL http://…) uses them bare
LINK_TTL = 10 * 60  # a proof-image link works this many seconds
LINK_MAX = 15 * 60  # and a link claiming longer is refused
CSRF_FIELD = "csrf_token"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def signing_key(settings: WebSettings) -> bytes:
    secret = settings.jwt_secret.encode() if settings.jwt_secret else settings.pii_key
    info = b"jastipin/admin/sign/jwt" if settings.jwt_secret else b"jastipin/admin/sign/pii"
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def sign(request: web.Request, message: str) -> str:
    key = request.config_dict[SIGN_KEY]
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def is_https(request: web.Request) -> bool:
    """Cookies are Secure when the deployment's public address is HTTPS (the app then
    sits behind a TLS-terminating proxy) or the connection itself is TLS. Forwarded
    headers are not trusted for this: PUBLIC_BASE_URL says how the app is reached."""
    public = request.config_dict[SETTINGS].public_base_url
    return public.lower().startswith("https://") or request.secure


def cookie_name(request: web.Request, base: str) -> str:
    return f"__Host-{base}" if is_https(request) else base


def set_cookie(response: web.StreamResponse, request: web.Request, base: str, value: str) -> None:
    """A session-lifetime cookie: HttpOnly, SameSite=Strict, Path=/, no Domain, Secure
    (with the __Host- prefix) over HTTPS."""
    response.set_cookie(
        cookie_name(request, base),
        value,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, base: str) -> None:
    response.del_cookie(
        cookie_name(request, base),
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="Strict",
    )


def read_cookie(request: web.Request, base: str) -> str | None:
    value = request.cookies.get(cookie_name(request, base))
    return value if value and len(value) <= 200 else None


def csrf_for(request: web.Request, purpose: str, value: str) -> str:
    """The CSRF token tied to ``value`` (a session's hash, a pre-login cookie) for one
    ``purpose``: a token made for one panel or form is refused by every other."""
    return sign(request, f"csrf:{purpose}:{value}")


def new_login_value() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(given: object, expected: str | None) -> bool:
    """Constant-time comparison; a missing or non-text token never matches."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# --- signed links --------------------------------------------------------------------------


def signed_query(request: web.Request, what: str, *, now: float | None = None) -> str:
    """``exp=…&sig=…`` for a link to ``what`` valid :data:`LINK_TTL` seconds."""
    expires = int((now if now is not None else time.time()) + LINK_TTL)
    return f"exp={expires}&sig={sign(request, f'link:{what}:{expires}')}"


def link_valid(request: web.Request, what: str, *, now: float | None = None) -> bool:
    """A signed link to ``what``: the signature is ours and it has not expired."""
    raw_exp = request.query.get("exp", "")
    given = request.query.get("sig", "")
    if not raw_exp.isdigit() or len(raw_exp) > 12:
        return False
    expires = int(raw_exp)
    current = now if now is not None else time.time()
    if not current <= expires <= current + LINK_MAX:
        return False
    return csrf_matches(given, sign(request, f"link:{what}:{expires}"))


# --- the client --------------------------------------------------------------------------


def client_address(request: web.Request) -> str:
    """The client's address. A request from this machine's loopback that carries
    ``X-Forwarded-For`` came through our reverse proxy: its last entry is the address
    the proxy saw (earlier entries are whatever the client claimed)."""
    remote = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and _loopback(remote):
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return remote


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def address_key(request: web.Request) -> str:
    """A keyed digest of the client address (the throttle keeps no address)."""
    return sign(request, "addr:" + client_address(request))[:40]


def network_of(address: str) -> str:
    """The coarse network of an address for the audit log (IPv4 /24, IPv6 /48): enough
    to tell attempts from one place apart, not a person's address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


# --- the headers ---------------------------------------------------------------------------


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The security headers on every panel response, errors and redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# --- the database ------------------------------------------------------------------------


@web.middleware
async def queries_off_the_loop(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A panel's queries (reports over every order, lists of every participant) run on
    the database's threads: on SQLite a page never holds the event loop that answers
    the webhooks (storage/sqlite_inline.py)."""
    with offloaded():
        return await handler(request)
