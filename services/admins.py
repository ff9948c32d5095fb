"""Admin panel access: login with a throttle, sessions with idle and absolute timeouts,
logout, and disabling an admin (which ends their sessions).

The web layer hands in what it knows of the request as opaque strings (a keyed digest
of the client address, a coarse network for the audit log); the random session id is
made here and only its SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from services import websessions
from services.accounts import hash_password, needs_rehash, verify_password
from services.websessions import token_hash
from storage.models import AdminUser
from storage.repo import admins as repo
from storage.repo import audit, jastipers

FREE_FAILURES = 5  # failures before the first wait
FIRST_WAIT = dt.timedelta(minutes=1)  # then doubled at each further failure
MAX_WAIT = dt.timedelta(hours=1)
FORGET_AFTER = dt.timedelta(hours=1)  # a key quiet this long starts from zero again


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account is unknown, so both answers take as long."""
    return hash_password(secrets.token_urlsafe(16))


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    """The outcome of a login attempt: a session token, or how long to wait (seconds;
    0 with no token means the email or password was wrong — the same for both)."""

    token: str | None = None
    admin_id: int | None = None
    wait_seconds: int = 0


def _active(admin: AdminUser) -> bool:
    return admin.is_active


# the panel's sessions: the rule in ``services.websessions``, a disabled admin's ended
SESSIONS = websessions.Kind(
    repo.session_with_admin, repo.touch_session, repo.revoke_session, _active
)


def account_key(email: str) -> str:
    return "acct:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:40]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def network_key(email: str, network: str) -> str:
    """The throttle key of an account tried from one coarse network."""
    digest = hashlib.sha256(f"{normalise_email(email)}|{network}".encode()).hexdigest()
    return "acnet:" + digest[:40]


def _wait_for(failures: int) -> dt.timedelta:
    if failures < FREE_FAILURES:
        return dt.timedelta(0)
    return min(FIRST_WAIT * 2 ** (failures - FREE_FAILURES), MAX_WAIT)


@dataclasses.dataclass(frozen=True, slots=True)
class _Attempt:
    """A login attempt that may check its password: the keys it was counted on."""

    admin_id: int | None
    usable: bool  # an active admin (else the dummy hash is checked)
    stored_hash: str
    keys: tuple[str, ...]
    account_checked: bool


Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def login(
    transaction: Transaction,
    email: str,
    password: str,
    *,
    address_key: str,
    network: str,
    now: dt.datetime,
    previous_token: str | None = None,
) -> Login:
    """Check a login; on success a new session (any ``previous_token`` is revoked, so the
    id rotates at login) and an argon2id rehash of an older hash.

    ``transaction`` opens a write transaction (``Database.transaction``): the attempt is
    counted in a first short one *before* the password is checked, the outcome written
    in a second, and the slow hash runs between them holding no lock. Counting first is
    what makes the limit hold under any concurrency: of any number of simultaneous
    attempts, only the first :data:`FREE_FAILURES` get their password checked.

    Counted per account, per account and network, and per address, whether the account
    exists or not (the throttle says nothing about which emails are admins). The account
    counter is not applied from the network of the admin's last successful login: a
    stranger's guesses elsewhere slow the stranger, and the owner still gets in from
    where they usually do (within their own per-network allowance). Every attempt is in
    the audit log (never the password; the address only as ``network``).
    """
    async with transaction() as session:
        attempt = await _count_attempt(
            session, email, address_key=address_key, network=network, now=now
        )
    if isinstance(attempt, Login):
        return attempt
    matches = await asyncio.to_thread(verify_password, password, attempt.stored_hash)
    async with transaction() as session:
        admin = None
        if attempt.admin_id is not None and attempt.usable and matches:
            admin = await repo.get_admin(session, attempt.admin_id)
        if admin is None or not admin.is_active:
            audit.record(
                session,
                "admin.login.failed",
                actor_admin_id=attempt.admin_id,
                network=network,
                reason="unknown account"
                if attempt.admin_id is None
                else "wrong password or disabled",
            )
            return Login()
        return await _logged_in(session, admin, password, attempt, network, now, previous_token)


async def _count_attempt(
    session: AsyncSession, email: str, *, address_key: str, network: str, now: dt.datetime
) -> _Attempt | Login:
    """Count the attempt on its keys, or the wait when one of them is locked."""
    admin = await jastipers.admin_by_email(session, normalise_email(email))
    actor = admin.id if admin is not None else None
    known = admin is not None and await repo.last_login_network(session, admin.id) == network
    keys = [network_key(email, network), "addr:" + address_key]
    if not known:
        keys.append(account_key(email))
    rows = await repo.lock_throttles(session, keys, now)
    wait = dt.timedelta(0)
    for row in rows:
        if row.locked_until is not None and row.locked_until > now:
            wait = max(wait, row.locked_until - now)
    if wait > dt.timedelta(0):
        audit.record(session, "admin.login.throttled", actor_admin_id=actor, network=network)
        return Login(wait_seconds=max(1, int(wait.total_seconds() + 0.999)))
    for row in rows:  # counted as a failure now; given back if the password matches
        if now - row.last_failure_at > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        lock = _wait_for(row.failures)
        row.locked_until = now + lock if lock else None
    usable = admin is not None and admin.is_active
    stored = admin.password_hash if admin is not None and usable else _dummy_hash()
    return _Attempt(actor, usable, stored, tuple(keys), account_checked=not known)


async def _logged_in(
    session: AsyncSession,
    admin: AdminUser,
    password: str,
    attempt: _Attempt,
    network: str,
    now: dt.datetime,
    previous_token: str | None,
) -> Login:
    """The password matched: the account starts from zero, the address gets its attempt
    back, and a new session starts."""
    net_key, addr_key = attempt.keys[0], attempt.keys[1]
    await repo.clear_throttle(session, net_key)
    if attempt.account_checked:
        await repo.clear_throttle(session, attempt.keys[2])
    await repo.refund_throttle(session, addr_key)
    if needs_rehash(admin.password_hash):
        admin.password_hash = await asyncio.to_thread(hash_password, password)
        audit.record(session, "admin.password.rehashed", actor_admin_id=admin.id)
    if previous_token:
        await repo.revoke_session(session, token_hash(previous_token), now)
    token = secrets.token_urlsafe(32)
    await repo.add_session(session, admin.id, token_hash(token), now)
    audit.record(session, "admin.login", actor_admin_id=admin.id, network=network)
    return Login(token=token, admin_id=admin.id)


async def logout(session: AsyncSession, token: str, now: dt.datetime) -> None:
    digest = token_hash(token)
    found = await repo.session_with_admin(session, digest)
    await repo.revoke_session(session, digest, now)
    if found is not None:
        audit.record(session, "admin.logout", actor_admin_id=found[1].id)


async def disable(session: AsyncSession, email: str, now: dt.datetime) -> bool:
    """Disable an admin login and end its sessions; False when there is no such admin."""
    admin = await jastipers.admin_by_email(session, normalise_email(email))
    if admin is None:
        return False
    admin.is_active = False
    ended = await repo.revoke_sessions_of(session, admin.id, now)
    audit.record(session, "admin.disable", actor_admin_id=admin.id, sessions=ended)
    return True
