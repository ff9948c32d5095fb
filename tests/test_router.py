"""The router is one look-up over the flows' tables (bot/router.py, flows.base.Table):
every kind of button the bot sends has a table that answers it, and a word, caption or
button prefix two tables claim stops the process at start-up instead of one of them
silently winning."""

from __future__ import annotations

import pytest
from pywa.types import CallbackData

from bot import router
from flows import menu, shop, words
from flows.base import Kind, Table
from services import payloads


def test_every_button_the_bot_sends_is_answered_by_a_table() -> None:
    # Given every typed payload the bot can put on a button or a list row
    prefixes = {
        cls.__callback_id__
        for cls in vars(payloads).values()
        if isinstance(cls, type)
        and issubclass(cls, CallbackData)
        and cls.__module__ == payloads.__name__
    }
    # Then each prefix belongs to exactly one flow's table
    assert prefixes == set(router.TAP_OWNERS)


def test_a_word_caption_or_prefix_claimed_twice_is_refused_when_the_tables_are_built() -> None:
    with pytest.raises(ValueError, match="KATALOG"):
        router.build([words.TABLE, Table(menu.flow, words={"KATALOG": menu.show_menu})])
    with pytest.raises(ValueError, match="whole text"):
        router.build([words.TABLE, Table(menu.flow, openings={"MENU": menu.show_menu})])
    with pytest.raises(ValueError, match="'shop'"):
        router.build([shop.TABLE, Table(menu.flow, taps={"shop:more": menu.show_menu})])
    caption = (Kind.IMAGE, "/add")
    twice = [Table(menu.flow, captions={caption: menu.show_menu})] * 2
    with pytest.raises(ValueError, match="/add"):
        router.build(twice)
    # the real tables build (the router did so at import)
    assert router.build(table for _flow, table in router.FLOWS.values()) == router.INDEX
