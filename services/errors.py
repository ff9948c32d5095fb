"""Domain errors: what went wrong, in words a user can be shown.

Each error carries a catalogue message id (Indonesian, marked with ``_``) and its named
parameters; the door that called the service translates it for whoever asked.
"""

from __future__ import annotations

from typing import Any


class Msg(str):
    """A catalogue msgid used as a parameter (a status label, a reason): the reader's
    translator translates it too."""

    __slots__ = ()


class DomainError(Exception):
    """A business rule said no. ``message`` is a catalogue msgid, ``params`` its fields."""

    def __init__(self, message: str, /, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class NotFound(DomainError):
    """The thing asked for does not exist, or is not the caller's."""


class NotAllowed(DomainError):
    """The thing exists but cannot be done now (a closed trip, a settled proof, …)."""


class InvalidMove(NotAllowed):
    """An order status change the allowed-moves table does not permit, or that another
    door made first."""


class InvalidInput(DomainError):
    """A value typed by a person does not read as what it should be."""


class OutOfStock(DomainError):
    """Not enough stock left for one line of an order; nothing was reserved."""

    def __init__(self, message: str, /, *, name: str, left: int) -> None:
        super().__init__(message, name=name, n=left)
        self.product_name = name
        self.left = left
