"""Typed button and list-row payloads, one prefix per flow: ``flow:action:id``.

These are pywa ``CallbackData`` dataclasses with a fixed, readable prefix instead of
pywa's import-order counter, so a button sent yesterday still parses after a deploy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pywa.types import CallbackData

_REGISTRY: dict[str, type[CallbackData]] = {}


class _Colon:
    __callback_data_sep__ = ":"


def payload(prefix: str) -> Any:
    """Class decorator: a frozen dataclass payload registered under ``prefix``."""

    def wrap(cls: type[CallbackData]) -> type[CallbackData]:
        cls.__callback_id__ = prefix  # type: ignore[assignment]
        if prefix in _REGISTRY:
            raise ValueError(f"payload prefix {prefix!r} used twice")
        _REGISTRY[prefix] = cls
        return cls

    return wrap


def parse(data: str) -> CallbackData | None:
    """The typed payload behind a button/list-row id, or None for anything unknown."""
    prefix = data.split(":", 1)[0]
    cls = _REGISTRY.get(prefix)
    if cls is None:
        return None
    try:
        return cls.from_str(data)
    except ValueError:
        return None


@payload("menu")
@dataclasses.dataclass(frozen=True, slots=True)
class MenuTap(_Colon, CallbackData):
    """A tap on the main menu: ``menu:catalog``, ``menu:orders``, ``menu:help``."""

    action: str


@payload("lang")
@dataclasses.dataclass(frozen=True, slots=True)
class LanguageTap(_Colon, CallbackData):
    """A language choice: ``lang:id`` / ``lang:en``."""

    locale: str


@payload("join")
@dataclasses.dataclass(frozen=True, slots=True)
class JoinTap(_Colon, CallbackData):
    """A tap inside the join flow: ``join:<action>:<trip code>``."""

    action: str
    code: str


@payload("cat")
@dataclasses.dataclass(frozen=True, slots=True)
class CatalogTap(_Colon, CallbackData):
    """Catalogue navigation: ``cat:page:2``, ``cat:prod:17``, ``cat:search:0``."""

    action: str
    arg: int


@payload("shop")
@dataclasses.dataclass(frozen=True, slots=True)
class ShopTap(_Colon, CallbackData):
    """Cart and checkout: ``shop:qty:2``, ``shop:skipnote:0``, ``shop:checkout:0``, …"""

    action: str
    arg: int


@payload("addr")
@dataclasses.dataclass(frozen=True, slots=True)
class AddressTap(_Colon, CallbackData):
    """The shipping address shown back: ``addr:ok`` (use it), ``addr:new`` (type another)."""

    action: str


@payload("ord")
@dataclasses.dataclass(frozen=True, slots=True)
class OrderTap(_Colon, CallbackData):
    """My orders: ``ord:view:JP-ABC12``, ``ord:cancel:…``, ``ord:cancelok:…``,
    ``ord:proof:…`` (this proof is for that order)."""

    action: str
    code: str


@payload("proof")
@dataclasses.dataclass(frozen=True, slots=True)
class ProofTap(_Colon, CallbackData):
    """The jastiper's review: ``proof:approve:12:0``, ``proof:reject:12:0``,
    ``proof:why:12:2`` (rejected for reason 2)."""

    action: str
    proof_id: int
    reason: int


@payload("jt")
@dataclasses.dataclass(frozen=True, slots=True)
class JastiperTap(_Colon, CallbackData):
    """Jastiper wizard buttons: ``jt:pay:dp``, ``jt:fee:0``, ``jt:bank:saved``."""

    action: str
    value: str


@payload("bc")
@dataclasses.dataclass(frozen=True, slots=True)
class BroadcastTap(_Colon, CallbackData):
    """Broadcast confirmation: ``bc:send:7`` / ``bc:cancel:7``."""

    action: str
    broadcast_id: int
