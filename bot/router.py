"""From an incoming message to the handler that answers it: one look-up over the flows'
tables (``flows.base.Table``), indexed once, at import.

A text that is the label of a choice of the current interactive message is that tap
(flows/labels.py). Then a text is looked up as a whole word (``KATALOG``), then by its
opening (``JOIN …``, ``DAFTAR JASTIPER``, any ``/command``), then in the current state
of the current flow; a tap by its payload's ``prefix:action`` (in the owning flow's
current state first), then by its prefix alone; a photo or file by its caption's first
word, then in the current state. What no table answers gets the menu's fallbacks
(flows/words.py): never silence, never an error text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable
from typing import TypeVar

from flows import jastiper, join, labels, orders, shop, words
from flows.base import Ctx, Flow, Handler, Kind, Table

Route = tuple[Flow, Handler]
K = TypeVar("K", bound=Hashable)

# every conversation: its machine and which handler answers what in which state
FLOWS: dict[str, tuple[Flow, Table]] = {
    table.flow.name: (table.flow, table)
    for table in (words.TABLE, join.TABLE, shop.TABLE, orders.TABLE, jastiper.TABLE)
}
HOME = words.TABLE.flow
FALLBACKS = words.FALLBACKS


def _index(entries: Iterable[tuple[K, Route]]) -> dict[K, Route]:
    """One key, one route: a word or a caption claimed twice is a bug."""
    index: dict[K, Route] = {}
    for key, route in entries:
        if key in index:
            raise ValueError(f"{key!r} is routed by two tables")
        index[key] = route
    return index


def _owners(tables: Iterable[Table]) -> dict[str, Table]:
    """Payload prefix → the one table that answers every tap of it."""
    owners: dict[str, Table] = {}
    for table in tables:
        keys = [*table.taps, *(key for on in table.states.values() for key in on.taps)]
        for prefix in {key.partition(":")[0] for key in keys}:
            if owners.setdefault(prefix, table) is not table:
                raise ValueError(f"taps {prefix!r} are routed by two tables")
    return owners


@dataclasses.dataclass(frozen=True)
class Index:
    """The tables' entries by what an update is looked up with."""

    words: dict[str, Route]
    openings: dict[str, Route]
    captions: dict[tuple[Kind, str], Route]
    tap_owners: dict[str, Table]


def build(tables: Iterable[Table]) -> Index:
    """Indexes the tables; raises ValueError when two entries claim one word, caption or
    payload prefix, or a word is both a whole text and an opening (then the look-ups'
    order would matter)."""
    tables = list(tables)
    index = Index(
        words=_index((w, (t.flow, h)) for t in tables for w, h in t.words.items()),
        openings=_index((w, (t.flow, h)) for t in tables for w, h in t.openings.items()),
        captions=_index((c, (t.flow, h)) for t in tables for c, h in t.captions.items()),
        tap_owners=_owners(tables),
    )
    firsts = {key.split()[0] for key in index.openings if " " in key}
    if index.words.keys() & {*index.openings, *firsts} or index.openings.keys() & firsts:
        raise ValueError("a word is routed both as a whole text and as an opening")
    return index


INDEX = build(table for _flow, table in FLOWS.values())  # once, at import
WORDS, OPENINGS, CAPTIONS, TAP_OWNERS = (
    INDEX.words,
    INDEX.openings,
    INDEX.captions,
    INDEX.tap_owners,
)


def resolve(ctx: Ctx) -> Route:
    """The flow and handler for this update."""
    inc = ctx.incoming
    conv = ctx.conversation
    current, table = FLOWS.get(conv.flow) or FLOWS[HOME.name]
    kind = inc.kind
    if kind is Kind.TEXT:
        said = inc.words
        if said:
            first = said[0].upper()
            route = (
                WORDS.get(inc.text.strip().upper())
                or OPENINGS.get("/" if first.startswith("/") else first)
                or (OPENINGS.get(f"{first} {said[1].upper()}") if len(said) > 1 else None)
            )
            if route is not None:
                return route
        on = table.states.get(conv.state)
        if on is not None and on.text is not None:
            return current, on.text
        return HOME, FALLBACKS.text
    if kind is Kind.TAP:
        if inc.tap is not None:
            prefix, _sep, rest = (inc.tap_raw or "").partition(":")
            owner = TAP_OWNERS.get(prefix)
            if owner is not None:
                key = f"{prefix}:{rest.partition(':')[0]}"
                flow = owner.flow
                # the state the tap lands in: the flow's initial one when it was elsewhere
                state = conv.state
                if conv.flow != flow.name or state not in flow.machine.states:
                    state = str(flow.initial)
                on = owner.states.get(state)
                handler = (
                    (on.taps.get(key) if on is not None else None)
                    or owner.taps.get(key)
                    or owner.taps.get(prefix)
                )
                if handler is not None:
                    return flow, handler
        return HOME, FALLBACKS.tap
    if kind is Kind.IMAGE or kind is Kind.DOCUMENT:
        caption = (inc.caption or "").split()
        if caption:
            route = CAPTIONS.get((kind, caption[0].lower()))
            if route is not None:
                return route
        on = table.states.get(conv.state)
        if on is not None and on.media is not None:
            return current, on.media
        return current, FALLBACKS.media
    return current, FALLBACKS.other


async def route(ctx: Ctx) -> None:
    """Answer one update; a button's label typed is the tap (flows/labels.py)."""
    tapped = await labels.typed_tap(ctx)
    if tapped is not None:
        ctx.incoming = tapped
    flow, handler = resolve(ctx)
    await flow.run(ctx, handler)
    labels.remember(ctx)
