"""A batch of messages from different users in one transaction: their users and
conversations are loaded together (bot/dispatcher.py ``load_batch``), and every buyer
still gets their own answer, from their own state, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot import simulate
from bot.keys import DISPATCHER
from storage.models import Conversation, User
from storage.repo import users as users_repo
from tests.conftest import Harness, phone
from tests.journeys import batched, texts

WELCOME = "Selamat datang di *Jastip Tokyo Demo*"
CONSENT = "Mau dapat kabar dari trip *Jastip Tokyo Demo*"
NOT_JOINED = "belum bergabung"


async def _count(h: Harness, model: Any) -> int:
    async with h.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_known_and_new_buyers_in_one_batch_each_get_their_own_answer(
    harness: Harness,
) -> None:
    """Given Rina half-way through joining (asked for her name), when one webhook brings
    her name together with two new buyers' JOIN and a third new buyer's MENU, then all
    four are handled in one batch: Rina is asked for consent, the new buyers are welcomed
    (or told to join first), and nobody is stored twice."""
    h = harness
    await h.seed_demo()
    rina, budi, cici, dodi = phone(), phone(), phone(), phone()
    assert any(WELCOME in t for t in await h.say(rina, "JOIN DEMO", name="Rina"))
    users_before = await _count(h, User)
    conversations_before = await _count(h, Conversation)

    dispatcher = h.app[DISPATCHER]
    batches: list[int] = []
    real_load = dispatcher.load_batch

    async def spy(session: Any, updates: dict[str, Any]) -> Any:
        batches.append(len(updates))
        return await real_load(session, updates)

    dispatcher.load_batch = spy  # type: ignore[method-assign]
    body = batched(
        simulate.text(rina, "Rina Wijaya", name="Rina"),
        simulate.text(budi, "JOIN DEMO", name="Budi"),
        simulate.text(cici, "MENU", name="Cici"),
        simulate.text(dodi, "JOIN DEMO", name="Dodi"),
    )
    assert (await h.post(body)).status == 200
    await h.settle()

    assert batches == [4]  # the four were loaded together
    assert any(CONSENT in t for t in texts(h, rina))
    for buyer in (budi, dodi):
        assert any(WELCOME in t for t in texts(h, buyer)), texts(h, buyer)
    assert any(NOT_JOINED in t for t in texts(h, cici)), texts(h, cici)
    assert await _count(h, User) == users_before + 3
    assert await _count(h, Conversation) == conversations_before + 3

    # the state each one was left in is the one they continue from
    registered = "Kamu sudah terdaftar di *Jastip Tokyo Demo*"
    assert any(registered in t for t in await h.tap_title(rina, "Ya, kabari aku"))
    assert any(CONSENT in t for t in await h.tap_title(budi, "Pakai Budi"))
    async with h.db.read() as session:
        names = {u.display_name for u in (await session.execute(select(User))).scalars()}
    assert "Rina Wijaya" in names


async def test_upsert_users_finds_known_creates_new_once_and_keeps_the_order(
    harness: Harness,
) -> None:
    """The batch lookup: a known number is found (and its new profile name kept), a new
    person who writes twice in one batch becomes one user, a business-scoped id is
    matched before a number, and the users come back in the order asked."""
    h = harness
    known, fresh = phone(), phone()
    async with h.db.transaction() as session:
        old = await users_repo.upsert_user(
            session, h.cipher, bsuid=None, wa_id=known, profile_name="Lama"
        )
        by_bsuid = await users_repo.upsert_user(
            session, h.cipher, bsuid="ID.bsuid-1", wa_id=None, profile_name="Bsuid"
        )
    async with h.db.transaction() as session:
        found = await users_repo.upsert_users(
            session,
            h.cipher,
            [
                users_repo.Sender(None, fresh, "Baru"),
                users_repo.Sender(None, known, "Nama Baru"),
                users_repo.Sender(None, fresh, "Baru"),
                users_repo.Sender("ID.bsuid-1", phone(), "Bsuid"),
            ],
        )
        assert [u.id for u in found][1] == old.id
        assert found[0] is found[2]
        assert found[3].id == by_bsuid.id
    async with h.db.read() as session:
        rows = {u.id: u for u in (await session.execute(select(User))).scalars()}
    assert len(rows) == 3
    assert rows[old.id].profile_name == "Nama Baru"
    assert rows[found[0].id].profile_name == "Baru"
    # the number that arrived later with the business-scoped id is kept with it
    assert rows[by_bsuid.id].phone_hash is not None


async def test_a_new_person_writing_with_and_without_a_bsuid_in_one_batch_is_one_user(
    harness: Harness,
) -> None:
    """Two messages of one new person in one batch, one carrying the number alone and
    one the number with a business-scoped id: one user, who keeps both, so a later
    message carrying only the business-scoped id finds them."""
    h = harness
    number = phone()
    async with h.db.transaction() as session:
        first, second = await users_repo.upsert_users(
            session,
            h.cipher,
            [
                users_repo.Sender(None, number, "Zaki"),
                users_repo.Sender("ID.zz-1", number, "Zaki"),
            ],
        )
        assert first is second
    async with h.db.transaction() as session:
        later = await users_repo.upsert_user(session, h.cipher, bsuid="ID.zz-1", wa_id=None)
    assert later.id == first.id
    assert await _count(h, User) == 1
