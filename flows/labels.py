"""Button labels typed instead of tapped.

On WhatsApp many people type the label they see rather than tap it. A text that,
normalised (case, surrounding spaces, punctuation and emoji aside), is the title of
exactly one button or list row of the last interactive message the bot sent this person
is handled as the tap of that choice (its payload id) — while that message is current:
the conversation has not moved since it was sent, and nothing interactive was sent to
the person after it (a notification from someone else's update). Otherwise — a title
two choices share, an older message, no such title — the text goes the normal way.

The choices travel on the conversation row (``conversations.choices``, written with the
row every message already saves): where they were sent (``flow:state``) and, per button
or row, a keyed digest of its normalised title (a title may carry a name) with its id.
:func:`remember` runs after every update's handler, :func:`typed_tap` before the router.
"""

from __future__ import annotations

import dataclasses
import unicodedata

from flows.base import Ctx, Incoming, Kind
from services import notify, payloads, replies
from storage.models import ConversationRow

# messages to the person looked through for a newer interactive one (only on a match)
RECENT = 10


def normalise(text: str) -> str:
    """The text as compared with a title: NFKC, case-folded, inner spaces collapsed,
    punctuation, symbols and emoji trimmed from both ends (``*Skip*`` is ``skip``,
    ``Berikutnya ▶`` is ``berikutnya``)."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def _where(conv: ConversationRow) -> str:
    return f"{conv.flow}:{conv.state}"


def remember(ctx: Ctx) -> None:
    """After the handler: keep the choices of the last interactive message this update
    sent the person, where the conversation now is; drop kept ones once it has moved."""
    conv = ctx.conversation
    if ctx.sent_choices:
        digest = ctx.resources.cipher.digest_label
        conv.choices = {
            "at": _where(conv),
            "c": [[digest(normalise(title)), id_] for title, id_ in ctx.sent_choices],
        }
    elif conv.choices is not None and conv.choices.get("at") != _where(conv):
        conv.choices = None


async def typed_tap(ctx: Ctx) -> Incoming | None:
    """The tap a typed text stands for (see the module), or None: the text as it is."""
    inc = ctx.incoming
    kept = ctx.conversation.choices
    if inc.kind is not Kind.TEXT or not kept or kept.get("at") != _where(ctx.conversation):
        return None
    said = normalise(inc.text)
    if not said or inc.text.lstrip().startswith("/"):  # a command is never a label
        return None
    digest = ctx.resources.cipher.digest_label(said)
    chosen = [id_ for d, id_ in kept["c"] if d == digest]
    if len(chosen) != 1:  # no such title, or one that two choices share
        return None
    if not await _still_last(ctx, [id_ for _d, id_ in kept["c"]]):
        return None
    return dataclasses.replace(
        inc, kind=Kind.TAP, tap=payloads.parse(chosen[0]), tap_raw=chosen[0]
    )


async def _still_last(ctx: Ctx, ids: list[str]) -> bool:
    """No other interactive message went to the person after the kept one (one the
    update of someone else sent: a proof to review, a held unit to order)."""
    for payload in await notify.recent(ctx.session, ctx.user, RECENT):
        found = replies.choices(payload)
        if found:
            return [id_ for _t, id_ in found] == ids
    return True  # the kept message is older than the last few: nothing newer is either
