"""The conversation engine: one update, one user lock, one transaction.

For each stored message unit: lock the unit (so a redelivery or the sweeper cannot run
it twice), find or create the user, lock their conversation row (one user's updates
one at a time), run the flow, and commit the state, the domain changes, the replies
(outbox rows) and "unit done" together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable
from zoneinfo import ZoneInfo

from pywa_async import WhatsApp
from pywa_async.types import CallbackButton, CallbackSelection, Message, MessageStatus
from sqlalchemy.ext.asyncio import AsyncSession

from bot import metrics, router
from bot.inbox import UserUpdate
from flows import labels
from flows.base import Ctx, Incoming, Kind, Resources
from locales import JAKARTA
from services import notify, payloads, qris, qris_image, ratelimit, statements
from services.errors import DomainError
from storage import trace, uploads
from storage.db import Database
from storage.media import new_key
from storage.models import OrderGroup, User, utcnow
from storage.repo import conversations, inbox, senders, statuses, users
from storage.repo.conversations import ConversationRow

log = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(days=1)
JAKARTA_TZ = ZoneInfo(JAKARTA)
SILENT_TYPES = frozenset({"reaction", "unsupported", "system", "request_welcome", "order"})


def to_incoming(update: UserUpdate) -> Incoming | None:
    """Reduce a pywa update to what flows act on; None for kinds we only acknowledge."""
    name = update.from_user.name
    if isinstance(update, CallbackButton | CallbackSelection):
        raw = str(update.data)
        return Incoming(
            kind=Kind.TAP,
            wamid=update.id,
            tap=payloads.parse(raw),
            tap_raw=raw,
            text=update.title or "",
            profile_name=name,
        )
    msg: Message = update
    mtype = str(msg.type.value if hasattr(msg.type, "value") else msg.type)
    if mtype in SILENT_TYPES:
        return None
    if mtype == "text" and msg.text is not None:
        return Incoming(
            kind=Kind.TEXT, wamid=msg.id, text=msg.text, profile_name=name, raw_type=mtype
        )
    if mtype == "image" and msg.image is not None:
        return Incoming(
            kind=Kind.IMAGE,
            wamid=msg.id,
            media_id=msg.image.id,
            mime_type=msg.image.mime_type,
            caption=msg.caption,
            text=msg.caption or "",
            profile_name=name,
            raw_type=mtype,
        )
    if mtype == "document" and msg.document is not None:
        return Incoming(
            kind=Kind.DOCUMENT,
            wamid=msg.id,
            media_id=msg.document.id,
            mime_type=msg.document.mime_type,
            caption=msg.caption,
            filename=msg.document.filename,
            text=msg.caption or "",
            profile_name=name,
            raw_type=mtype,
        )
    return Incoming(kind=Kind.OTHER, wamid=msg.id, profile_name=name, raw_type=mtype)


THROTTLE_HINTS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Loaded:
    """A message's user and locked conversation, loaded with the rest of its batch
    (:meth:`Dispatcher.load_batch`) and handed to :meth:`Dispatcher.apply_message`."""

    user: User
    conversation: ConversationRow


def _who(update: UserUpdate) -> str:
    return str(update.from_user.bsuid or update.from_user.wa_id or "")


class Dispatcher:
    """Runs message and status units; ``after_commit`` wakes the outbox dispatcher."""

    def __init__(
        self,
        db: Database,
        resources: Resources,
        *,
        after_commit: Callable[[], None],
        wa: WhatsApp | None = None,
    ) -> None:
        self.db = db
        self.resources = resources
        self.after_commit = after_commit
        self.wa = wa
        # users over their rate limit, until their window ends (Meta's clock): a hint
        # to skip downloading media that will be dropped anyway. The count itself is on
        # the conversation row; within a window it only grows, so a message written
        # before the window's end is dropped whichever process handles it.
        self._throttled: dict[str, dt.datetime] = {}

    async def fetch_media(self, incoming: Incoming) -> Incoming:
        """Download an image / document promptly (Meta's URL expires in minutes), check it
        by content, strip it, and store it privately under a generated key.

        Runs before the transaction, so no lock is held while bytes travel (a failed
        download is tried again with a fresh URL, see ``uploads.download_media``). A file
        that fails the checks is not stored; the flow answers with the reason.
        """
        if incoming.media_id is None or self.wa is None or self.resources.media is None:
            return dataclasses.replace(incoming, upload_error="download_failed")
        if statements.is_statement_caption(incoming.caption) or (
            incoming.kind is Kind.DOCUMENT
            and statements.looks_like_statement(incoming.filename, incoming.mime_type)
        ):
            return await self.fetch_statement(incoming)
        if qris.is_caption(incoming.caption):
            return await self.fetch_qr(incoming)
        settings = self.resources.settings
        try:
            data, mime = await uploads.download_media(
                self.wa,
                incoming.media_id,
                api_base=settings.wa_api_base,
                media_hosts=settings.wa_media_hosts,
            )
            # decoding and re-encoding is CPU work on hostile input: on the decoding thread
            clean = await uploads.prepare_proof(data, mime or incoming.mime_type)
        except uploads.UploadRejected as exc:
            return dataclasses.replace(incoming, upload_error=exc.reason)
        except Exception:
            log.warning("media download failed", exc_info=True)
            return dataclasses.replace(incoming, upload_error="download_failed")
        key = new_key("uploads", clean.extension)
        await self.resources.media.put(key, clean.data, clean.mime_type)
        return dataclasses.replace(
            incoming, media_key=key, media_sha256=clean.sha256, mime_type=clean.mime_type
        )

    async def _download(self, incoming: Incoming, max_bytes: int) -> bytes:
        """The file of ``incoming`` from the Graph API, at most ``max_bytes``."""
        assert incoming.media_id is not None and self.wa is not None
        settings = self.resources.settings
        data, _mime = await uploads.download_media(
            self.wa,
            incoming.media_id,
            api_base=settings.wa_api_base,
            media_hosts=settings.wa_media_hosts,
            max_bytes=max_bytes,
        )
        return data

    async def fetch_statement(self, incoming: Incoming) -> Incoming:
        """A bank statement (a document captioned ``/mutasi``): download it and read its
        credits on a worker thread, before the transaction. The file itself is not kept
        (each payment it confirms keeps its own line); a file that is no statement is
        answered by the flow with the reason."""
        try:
            data = await self._download(incoming, statements.MAX_BYTES)
            statement = await statements.read(data, utcnow().astimezone(JAKARTA_TZ).date())
        except uploads.UploadRejected as exc:
            return dataclasses.replace(incoming, upload_error=exc.reason)
        except statements.StatementRejected as exc:
            return dataclasses.replace(incoming, upload_error=f"statement_{exc.reason}")
        except Exception:
            log.warning("statement download failed", exc_info=True)
            return dataclasses.replace(incoming, upload_error="download_failed")
        key = None
        if not statements.is_statement_caption(incoming.caption) and self.resources.media:
            # sent without /mutasi: kept until the jastiper confirms it is to be matched
            key = new_key("exports/statements", "bin")  # expires with the exports
            await self.resources.media.put(key, data, "application/octet-stream")
        return dataclasses.replace(
            incoming,
            media_sha256=hashlib.sha256(data).hexdigest(),
            statement=statement,
            media_key=key,
        )

    async def fetch_qr(self, incoming: Incoming) -> Incoming:
        """A picture captioned ``/qris`` (a merchant's QRIS sticker): download it and read
        its QR codes off the event loop, before the transaction; the picture is not kept."""
        try:
            data = await self._download(incoming, qris_image.MAX_BYTES)
            texts = await qris_image.read_qr(data)
        except uploads.UploadRejected as exc:
            return dataclasses.replace(incoming, upload_error=exc.reason)
        except qris_image.Unreadable as exc:
            return dataclasses.replace(incoming, upload_error=exc.reason)
        except Exception:
            log.warning("qris download failed", exc_info=True)
            return dataclasses.replace(incoming, upload_error="download_failed")
        return dataclasses.replace(incoming, qr_texts=tuple(texts))

    def needs_media(self, update: UserUpdate) -> bool:
        """An image or a document: :meth:`prepare` may download it (the inbox sets such
        a unit aside from its batch meanwhile)."""
        return isinstance(update, Message) and (
            update.image is not None or update.document is not None
        )

    async def prepare(self, key: str, update: UserUpdate) -> Incoming | None:
        """What a message becomes before its transaction: the flows' view of it, with any
        image or document downloaded, checked and stored (None: only acknowledged).

        Media from someone with no use for it (no order awaiting payment, not a
        jastiper) is neither downloaded nor decoded: the flow answers it as it answers
        any such file (``media_key`` stays None)."""
        incoming = to_incoming(update)
        self._crash_if_marked(incoming)
        if incoming is not None and incoming.kind in (Kind.IMAGE, Kind.DOCUMENT):
            until = self._throttled.get(_who(update))
            if until is not None and update.timestamp < until:
                # over the limit: apply_message drops it, so no download (were it let
                # through after all, the buyer is asked to send it again)
                return dataclasses.replace(incoming, upload_error="download_failed")
            async with self.db.read() as session:
                pending = await inbox.get(session, key)
                if pending is None or pending.status != "pending":
                    return incoming  # already handled: do not download again
                wanted = await senders.has_use_for_media(
                    session,
                    self.resources.cipher,
                    bsuid=update.from_user.bsuid,
                    wa_id=update.from_user.wa_id,
                    order_statuses=OrderGroup.OPEN_FOR_PAYMENT,
                )
            if not wanted:
                metrics.INBOX_MEDIA_UNWANTED.inc()
                return incoming
            incoming = await self.fetch_media(incoming)
        return incoming

    def _crash_if_marked(self, incoming: Incoming | None) -> None:
        """Test-only (``JASTIPIN_TEST_CRASH_MARKER``, never in production): a text holding
        the marker ends this process at once, as a decoder crash or the OOM killer would."""
        marker = self.resources.settings.test_crash_marker
        if marker and incoming is not None and marker in incoming.text:
            log.error("test crash marker: ending the process")
            os._exit(70)

    async def load_batch(
        self, session: AsyncSession, updates: dict[str, UserUpdate]
    ) -> dict[str, Loaded]:
        """Before a batch of messages of different users is applied in one transaction:
        their users found (or created) with one SELECT and one INSERT, and their
        conversations locked with one more, instead of two or three statements each.
        ``updates``: by unit key; the answer too, handed to :meth:`apply_message` by the
        caller (empty for fewer than two: the single path is as cheap)."""
        if len(updates) < 2:
            return {}
        senders = [
            users.Sender(u.from_user.bsuid, u.from_user.wa_id, u.from_user.name)
            for u in updates.values()
        ]
        found = await users.upsert_users(session, self.resources.cipher, senders)
        convs = await conversations.lock_conversations(session, [u.id for u in found])
        return {
            key: Loaded(user, convs[user.id]) for key, user in zip(updates, found, strict=True)
        }

    async def apply_message(
        self,
        session: AsyncSession,
        key: str,
        update: UserUpdate,
        incoming: Incoming | None,
        loaded: Loaded | None = None,
    ) -> bool:
        """Run one message in the caller's transaction: find the user, lock their
        conversation, run the flow. State, domain rows, replies and "done" commit together.
        The caller has claimed the unit in this transaction; ``loaded``: its user and
        conversation from :meth:`load_batch` (None: loaded here)."""
        if loaded is not None:
            user, conv = loaded.user, loaded.conversation
        else:
            user = await users.upsert_user(
                session,
                self.resources.cipher,
                bsuid=update.from_user.bsuid,
                wa_id=update.from_user.wa_id,
                profile_name=update.from_user.name,
            )
        trace.bind(userId=user.id)  # ids only: never the number or the name
        if incoming is None:
            return True
        if loaded is None:
            conv = await conversations.lock_conversation(session, user.id)
        now = utcnow()
        if not self._admitted(session, user, conv, update, incoming, now):
            conversations.save(session, conv)  # the message counted in its window
            return True  # marked done with the batch: dropped, never retried
        if conv.updated_at < now - STALE_AFTER and conv.state != "idle":
            conv.flow, conv.state = "menu", "idle"
        ctx = Ctx(
            session=session,
            user=user,
            conversation=conv,
            incoming=incoming,
            resources=self.resources,
            now=now,
        )
        try:
            await router.route(ctx)
        except DomainError as error:  # the chat's one door for a service's "no" (#27)
            ctx.refuse(error)
            labels.remember(ctx)  # what route() does after a handler that returned
        conv.version += 1
        conv.updated_at = now
        conversations.save(session, conv)
        return True

    def _admitted(
        self,
        session: AsyncSession,
        user: User,
        conv: ConversationRow,
        update: UserUpdate,
        incoming: Incoming,
        now: dt.datetime,
    ) -> bool:
        """The per-user rate limit, on the locked conversation row (no extra statement):
        False when the message is over the limit — the first such one answered with a
        "slow down", the rest of the window in silence."""
        settings = self.resources.settings
        limit, window = settings.user_rate_limit, settings.user_rate_window_seconds
        verdict = ratelimit.admit(
            conv,
            getattr(update, "timestamp", None) or now,
            limit=limit,
            window=window,
            text=incoming.text if incoming.kind is Kind.TEXT else None,
        )
        who = _who(update)
        until = ratelimit.throttled_until(conv, limit=limit, window=window)
        if until is None:
            self._throttled.pop(who, None)
        else:
            if len(self._throttled) >= THROTTLE_HINTS:
                self._throttled.clear()  # only a hint: the row has the truth
            self._throttled[who] = until
        if verdict is ratelimit.Verdict.ADMIT:
            return True
        metrics.INBOX_THROTTLED.labels(verdict.value).inc()
        if verdict is ratelimit.Verdict.WARN:
            notify.say(session, user, ratelimit.SLOW_DOWN)
        return False

    async def apply_status(self, session: AsyncSession, key: str, update: MessageStatus) -> bool:
        """Record a delivery status (forward only) and what Meta bills for the message
        (the caller has claimed the unit in this transaction)."""
        error = update.error
        pricing = update.pricing
        await statuses.record_status(
            session,
            wa_message_id=update.id,
            status=str(update.status.value),
            error_code=error.code if error else None,
            error_title=error.message if error else None,
            pricing_category=str(pricing.category.value) if pricing and pricing.category else None,
            billable=pricing.billable if pricing else None,
            tracker=str(update.tracker) if update.tracker else None,
            at=update.timestamp,
            default_rate=self.resources.settings.cost_estimator_rate,
        )
        return True

    async def apply_ignored(self, session: AsyncSession, key: str) -> bool:
        """A unit no handler acts on (account or template news): claiming it was all."""
        return True
