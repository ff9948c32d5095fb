"""The pieces every flow uses: the incoming event, the handler context, the flow spec.

A flow is a module (or a package) with a ``StrEnum`` of states, a ``TRANSITIONS`` table,
small async handlers and a ``TABLE`` (:class:`Table`) saying which handler answers what
in which state. Its ``transitions`` machine is built once per flow, at import; a
conversation is attached to it as a model for one update and detached afterwards, so
there is no machine per user and no state in process memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pywa.types import CallbackData
from sqlalchemy.ext.asyncio import AsyncSession
from transitions import Machine

from locales import Translator
from services import replies
from services.errors import DomainError, Msg
from services.statements import Statement
from storage.crypto import PiiCipher
from storage.models import User, utcnow
from storage.repo import outbox
from storage.repo.conversations import ConversationRow


class Kind(enum.StrEnum):
    TEXT = "text"
    TAP = "tap"  # a reply button or a list row
    IMAGE = "image"
    DOCUMENT = "document"
    OTHER = "other"  # stickers, locations, reactions, … the bot does not act on


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Incoming:
    """One user message, reduced to what flows act on."""

    kind: Kind
    wamid: str
    text: str = ""
    tap: CallbackData | None = None
    tap_raw: str | None = None
    media_id: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    profile_name: str | None = None
    raw_type: str | None = None
    # set by the bot layer after downloading and checking an image / document
    media_key: str | None = None
    media_sha256: str | None = None
    upload_error: str | None = None
    # a document captioned /mutasi: the bank statement read by the bot layer
    statement: Statement | None = None
    # a picture captioned /qris: the texts of the QR codes read from it
    qr_texts: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        # the kind only: the text, caption and profile name are the person's
        return f"<incoming {self.kind.value}>"

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def first_word(self) -> str:
        words = self.words
        return words[0].upper() if words else ""


def purchase_step(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A purchase step's handler (checkout, the order's confirmation and how to pay):
    its replies are claimed first while replies queue at the number's cap (issue #28)."""

    @functools.wraps(handler)
    async def step(ctx: Ctx, *args: Any, **kwargs: Any) -> None:
        ctx.purchase = True
        await handler(ctx, *args, **kwargs)

    return step


@dataclasses.dataclass(frozen=True, slots=True)
class Resources:
    """Process-wide things a handler may need, passed in (never imported globals)."""

    cipher: PiiCipher
    settings: Any
    media: Any = None


@dataclasses.dataclass
class Ctx:
    """What a handler receives: session, user, conversation, translator, outbox."""

    session: AsyncSession
    user: User
    conversation: ConversationRow
    incoming: Incoming
    resources: Resources
    now: dt.datetime = dataclasses.field(default_factory=utcnow)
    t: Translator = dataclasses.field(init=False)
    # reads repeated within this one update (the current trip): asked once, then kept
    memo: dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False)
    # (title, payload id) of the last interactive message this update sent the user
    sent_choices: list[tuple[str, str]] | None = dataclasses.field(
        default=None, init=False, repr=False
    )
    # a purchase step (checkout, confirmation): its replies go first at the number's cap
    purchase: bool = dataclasses.field(default=False, init=False)
    _model: _FlowModel | None = dataclasses.field(default=None, init=False, repr=False)
    _flow: Flow | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.t = Translator(self.user.locale)

    # --- replies ---------------------------------------------------------------------

    def reply(self, payload: replies.Payload) -> None:
        """Queue a reply to the current user, in this transaction."""
        outbox.queue(self.session, self.user.id, payload, priority=1 if self.purchase else 0)
        choices = replies.choices(payload)
        if choices:  # what a label typed next stands for (flows/labels.py)
            self.sent_choices = choices

    def say(self, message: str, /, **params: Any) -> None:
        """Queue a translated text reply."""
        self.reply(replies.text(self.t(message, **params)))

    def refuse(self, error: DomainError) -> None:
        """Answer with what a service said no with, in the user's language."""
        params = {k: self.t(v) if isinstance(v, Msg) else v for k, v in error.params.items()}
        self.say(error.message, **params)

    def typed(self, *labels: str) -> bool:
        """The text is one of these words (in either language, whatever the case, with or
        without WhatsApp's *bold* / _italic_): another way to say what a button says. A
        button's own label typed needs no check: it is the tap (flows/labels.py)."""
        said = " ".join(self.incoming.text.strip(" *_~.!").split()).casefold()
        if not said:
            return False
        en = Translator("en")
        id_ = Translator("id")
        return any(said in (id_(label).casefold(), en(label).casefold()) for label in labels)

    def set_locale(self, locale: str) -> None:
        self.user.locale = locale
        self.t = Translator(locale)

    # --- state -----------------------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        return self.conversation.data

    def remember(self, **values: Any) -> None:
        """Store values in the conversation (JSON column: reassign to mark it dirty)."""
        self.conversation.data = {**self.conversation.data, **values}

    def forget(self, *keys: str) -> None:
        self.conversation.data = {k: v for k, v in self.conversation.data.items() if k not in keys}

    def fire(self, trigger: str) -> None:
        """Move the attached flow's state through a declared transition."""
        if self._model is None:
            raise RuntimeError("no flow attached")
        self._model.trigger(trigger)
        self.conversation.state = self._model.state

    def enter(self, flow: Flow, state: enum.StrEnum | None = None) -> None:
        """Hand the conversation to a flow, in its initial (or a given) state; its machine
        is attached from here on, so ``fire`` moves through that flow's transitions."""
        self.conversation.flow = flow.name
        self.conversation.state = str(state or flow.initial)
        if self._flow is not flow:
            flow.attach(self)  # detaches the previous flow's model first
        elif self._model is not None:
            flow.machine.set_state(self.conversation.state, model=self._model)


def _plain(transition: dict[str, Any]) -> dict[str, Any]:
    """State names as plain strings (``transitions`` would name Enum members by ``.name``)."""
    out = dict(transition)
    for key in ("source", "dest"):
        value = out.get(key)
        if isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        elif value is not None:
            out[key] = str(value)
    return out


class _FlowModel:
    """The object a flow machine drives for the length of one update (``transitions``
    adds ``state`` and ``trigger`` to it)."""

    state: str
    trigger: Callable[[str], bool]


Handler = Callable[[Ctx], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class On:
    """What answers in one state of a flow: free text, a photo or file, and taps (by
    ``prefix:action``) that mean something only there."""

    text: Handler | None = None
    media: Handler | None = None
    taps: Mapping[str, Handler] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Fallbacks:
    """What answers when no table does: a text or a tap from the menu's flow, a photo or
    file and anything else (a sticker, a location) where the conversation is."""

    text: Handler
    tap: Handler
    media: Handler
    other: Handler


@dataclasses.dataclass(frozen=True)
class Table:
    """One conversation, declared the way python-telegram-bot's ``ConversationHandler``
    declares one: its entry points, its states → handlers, and its taps. Every handler
    runs with the conversation attached to ``flow``. The router (bot/router.py) indexes
    every table once, at import, and answers each update with a few dict look-ups.

    Args:
        flow: The flow these handlers run in.
        words: The whole text, upper-cased (``"KATALOG"``), in any state.
        openings: The first word, or the first two, upper-cased (``"JOIN"``,
            ``"DAFTAR JASTIPER"``); ``"/"`` stands for any slash command.
        captions: A photo's or file's caption's first word, lower-cased, by kind
            (``(Kind.IMAGE, "/add")``), in any state.
        states: State → what answers there (free text, media, taps of that state).
        taps: ``"prefix:action"`` or a whole ``"prefix"`` → handler, in any state; a
            prefix belongs to one table.
    """

    flow: Flow
    words: Mapping[str, Handler] = dataclasses.field(default_factory=dict)
    openings: Mapping[str, Handler] = dataclasses.field(default_factory=dict)
    captions: Mapping[tuple[Kind, str], Handler] = dataclasses.field(default_factory=dict)
    states: Mapping[str, On] = dataclasses.field(default_factory=dict)
    taps: Mapping[str, Handler] = dataclasses.field(default_factory=dict)


def with_tap(handler: Callable[[Ctx, Any], Awaitable[None]], field: str) -> Handler:
    """A handler of one value of the tapped payload (``arg``, ``code``, …) as a table
    entry: ``with_tap(show_product, "arg")`` answers ``cat:prod:17`` with
    ``show_product(ctx, 17)``."""

    async def tapped(ctx: Ctx) -> None:
        await handler(ctx, getattr(ctx.incoming.tap, field))

    tapped.__doc__ = handler.__doc__
    tapped.__qualname__ = f"{getattr(handler, '__qualname__', 'handler')}[{field}]"
    return tapped


async def ignore(ctx: Ctx) -> None:
    """An old button whose action is gone: nothing to do."""


class Flow:
    """A conversation's states and transition table, and its ``transitions`` machine.

    Args:
        name: The key stored in ``conversations.flow``.
        states: The flow's ``StrEnum`` of states.
        transitions: ``[{"trigger": …, "source": …, "dest": …}, …]``.
        initial: The state a conversation enters the flow in.
    """

    def __init__(
        self,
        name: str,
        states: type[enum.StrEnum],
        transitions: list[dict[str, Any]],
        initial: enum.StrEnum,
    ) -> None:
        self.name = name
        self.states = states
        self.transitions = [_plain(tr) for tr in transitions]
        self.initial = initial
        self.machine = Machine(
            model=None,
            states=[str(s) for s in states],
            transitions=self.transitions,
            initial=str(initial),
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )

    def attach(self, ctx: Ctx) -> None:
        """Attach the conversation to this flow's machine for one update.

        A conversation that was in another flow (or in a state this flow does not know)
        enters this one in its initial state. Whatever was attached before is detached
        first, so a context never holds more than one model on any machine.
        """
        if ctx._flow is not None:
            ctx._flow.detach(ctx)
        if ctx.conversation.flow != self.name or ctx.conversation.state not in self.machine.states:
            ctx.conversation.flow = self.name
            ctx.conversation.state = str(self.initial)
        model = _FlowModel()
        self.machine.add_model(model, initial=ctx.conversation.state)
        ctx._model = model
        ctx._flow = self

    def detach(self, ctx: Ctx) -> None:
        if ctx._model is not None:
            self.machine.remove_model(ctx._model)
        ctx._model = None
        ctx._flow = None

    async def run(self, ctx: Ctx, handler: Handler) -> None:
        """Run one handler with the conversation attached to this flow."""
        self.attach(ctx)
        try:
            await handler(ctx)
        finally:
            if ctx._flow is not None:
                ctx._flow.detach(ctx)
