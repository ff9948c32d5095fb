"""The waitlist of a sold-out product (issue #14): "Kabari kalau ada / Notify me", the
freed unit held 30 minutes for the first in line and then offered to the next, the
place shown to those waiting, and the counts in ``/products`` — as conversations on
both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from bot import jobs, simulate
from storage.demo import DEMO_PHONE
from storage.models import Order, Product, WaitlistEntry, utcnow
from tests.conftest import Harness, phone
from tests.journeys import checkout, joined, jpeg, order_one

ROYCE = "Royce Nama Chocolate"  # product #3 of the demo trip
OFFER = "tersedia lagi"  # the words of an offer, in Indonesian


async def tina(h: Harness, text: str) -> list[str]:
    return await h.say(DEMO_PHONE, text, name="Tina")


async def sold_out_after_one_order(h: Harness) -> str:
    """Royce at one unit, bought by a first buyer; returns that buyer."""
    await h.seed_demo()
    await tina(h, "/products DEMO")
    await tina(h, "/stock 3 1")
    first = await joined(h, "Ayu")
    await order_one(h, first, ROYCE, "1")
    assert await royce_stock(h) == 0
    return first


async def royce_stock(h: Harness) -> int | None:
    async with h.db.read() as session:
        stmt = select(Product.stock).where(Product.name == ROYCE)
        return (await session.execute(stmt)).scalar_one()


async def view(h: Harness, buyer: str) -> str:
    """The buyer opens Royce from a search; returns what the product says."""
    await h.say(buyer, "CARI Royce")
    return "\n".join(await h.tap_title(buyer, ROYCE))


async def wait_for_royce(h: Harness, buyer: str) -> str:
    """The buyer opens the sold-out Royce and taps "Kabari kalau ada"."""
    shown = await view(h, buyer)
    assert "Stok habis" in shown
    (answer,) = await h.tap_title(buyer, "Kabari kalau ada")
    return answer


def offers(h: Harness, buyer: str, words: str = OFFER) -> list[str]:
    return [t for t in h.fake.texts_to(buyer) if words in t]


BUDI_ADDRESS = (
    "Budi Santoso",
    "0812-3456-7890",
    "Jl. Mawar No. 7, RT 03/RW 04, Cilandak",
    "Jakarta Selatan",
    "12430",
)


async def finish_order(h: Harness, buyer: str, qty: str = "1") -> str:
    """From the quantity question to the placed order; returns the payment text."""
    return await checkout(h, buyer, qty, BUDI_ADDRESS)


async def past_deadline(h: Harness) -> None:
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).values(payment_deadline=utcnow() - dt.timedelta(minutes=1))
        )


async def entries(h: Harness) -> list[tuple[str, int]]:
    async with h.db.read() as session:
        stmt = select(WaitlistEntry.status, WaitlistEntry.held).order_by(WaitlistEntry.id)
        return [(s, n) for s, n in (await session.execute(stmt)).all()]


async def test_the_issue_check_a_waiting_buyer_is_offered_royce_when_stock_is_back(
    harness: Harness,
) -> None:
    h = harness
    await sold_out_after_one_order(h)
    second = await joined(h, "Budi")
    # the sold-out product offers "notify me" instead of an Order button
    await view(h, second)
    assert [t for t, _id in h.last_choices(second)] == ["Kabari kalau ada", "Kembali"]
    answer = await wait_for_royce(h, second)
    assert "Kami kabari" in answer and "antrean ke-1" in answer
    (listed,) = await tina(h, "/products DEMO")
    assert "#3 Royce Nama Chocolate — Rp 250.000 · habis · 1 antre" in listed

    # the jastiper sets its stock to 1 again: the waiting buyer is offered it
    (stocked,) = await tina(h, "/stock 3 1")
    assert "sekarang 1" in stocked and "1 ditawarkan dulu ke pembeli di antrean" in stocked
    (offer,) = offers(h, second)
    assert "Royce Nama Chocolate" in offer and "30 menit" in offer
    assert [t for t, _id in h.last_choices(second)] == ["Pesan"]
    # held for them: anyone else still sees it sold out and cannot order it
    third = await joined(h, "Citra")
    assert "Stok habis" in await view(h, third)
    assert [t for t, _id in h.last_choices(third)] == ["Kabari kalau ada", "Kembali"]
    assert await royce_stock(h) == 0

    # the holder orders it through the offer's button
    await h.tap_title(second, "Pesan")
    assert [t for t, _id in h.last_choices(second)] == ["1"]  # one held for them
    done = await finish_order(h, second)
    assert "Pesanan *JP-" in done
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(Order.id)))).scalar_one() == 2
    assert await royce_stock(h) == 0
    assert await entries(h) == [("ordered", 0)]
    (listed,) = await tina(h, "/products DEMO")
    (royce_line,) = [line for line in listed.split("\n") if ROYCE in line]
    assert royce_line.endswith("Rp 250.000 · habis")  # nobody waits any more
    assert h.fake.rejected == [], "Meta would have rejected a send"


async def test_waiting_buyers_see_their_place_and_a_second_tap_keeps_it(
    harness: Harness,
) -> None:
    h = harness
    await sold_out_after_one_order(h)
    budi, citra = await joined(h, "Budi"), await joined(h, "Citra")
    assert "antrean ke-1" in await wait_for_royce(h, budi)
    assert "antrean ke-2" in await wait_for_royce(h, citra)
    # opening the product again shows the place, and no second "notify me"
    shown = await view(h, citra)
    assert "antrean ke-2" in shown
    assert [t for t, _id in h.last_choices(citra)] == ["Kembali"]
    # an old "notify me" button tapped again: still one entry, the same place
    notify_id = next(
        i for t, i in _choices_of(h, citra, "Kabari kalau ada") if t == "Kabari kalau ada"
    )
    (again,) = await h.tap(citra, notify_id, "Kabari kalau ada")
    assert "sudah ada di antrean" in again and "antrean ke-2" in again
    assert await entries(h) == [("waiting", 0), ("waiting", 0)]
    (listed,) = await tina(h, "/products DEMO")
    assert "Royce Nama Chocolate — Rp 250.000 · habis · 2 antre" in listed


def _choices_of(h: Harness, buyer: str, title: str) -> list[tuple[str, str]]:
    """The buttons of the last message to ``buyer`` that had one titled ``title``."""
    for message in reversed(h.fake.sent_to(buyer)):
        buttons = (message.get("interactive") or {}).get("action", {}).get("buttons", [])
        found = [(b["reply"]["title"], b["reply"]["id"]) for b in buttons]
        if any(t == title for t, _i in found):
            return found
    raise AssertionError(f"no message with {title!r}")


async def _cancel(h: Harness, first: str) -> None:
    await h.say(first, "PESANAN")
    (row_title, _), *_ = h.last_choices(first)
    await h.tap_title(first, row_title)
    await h.tap_title(first, "Batalkan")
    (cancelled,) = await h.tap_title(first, "Ya, batalkan")
    assert "dibatalkan" in cancelled


async def _expire(h: Harness, first: str) -> None:
    await past_deadline(h)
    assert await jobs.expire_unpaid_orders(h.db) == 1
    assert await jobs.expire_unpaid_orders(h.db) == 0


async def _reject_late_proof(h: Harness, first: str) -> None:
    """A proof sent in time but rejected after the payment window closed: the order
    expires on the next pass and its unit frees."""
    await h.send(
        simulate.media(first, "image", h.fake.add_media(jpeg("blue"), "image/jpeg"), "image/jpeg")
    )
    await past_deadline(h)
    assert await jobs.expire_unpaid_orders(h.db) == 0  # a proof being checked stays
    await h.tap_title(DEMO_PHONE, "Tolak")
    await h.tap_title(DEMO_PHONE, "Nominal tidak sesuai")
    assert "ditolak jastiper" in h.fake.texts_to(first)[-1]
    assert await jobs.expire_unpaid_orders(h.db) == 1


async def _raise_stock(h: Harness, first: str) -> None:
    await tina(h, "/products DEMO")
    (stocked,) = await tina(h, "/stock 3 1")
    assert "1 ditawarkan" in stocked


@pytest.mark.parametrize(
    "free", [_cancel, _expire, _reject_late_proof, _raise_stock], ids=lambda f: f.__name__
)
async def test_a_freed_unit_is_offered_to_the_first_waiting_once(
    harness: Harness, free: object
) -> None:
    h = harness
    first = await sold_out_after_one_order(h)
    budi, citra = await joined(h, "Budi"), await joined(h, "Citra")
    await wait_for_royce(h, budi)
    await wait_for_royce(h, citra)
    assert callable(free)
    await free(h, first)
    await h.settle()
    # nothing else that runs finds more to offer
    assert await jobs.expire_waitlist_holds(h.db) == 0
    assert await jobs.expire_unpaid_orders(h.db) == 0
    await h.settle()
    assert len(offers(h, budi)) == 1
    assert offers(h, citra) == []
    assert await royce_stock(h) == 0  # held for Budi, not free for anyone
    assert await entries(h) == [("offered", 1), ("waiting", 0)]
    assert "antrean ke-1" in await view(h, citra)  # Citra moved up


async def test_a_lapsed_hold_goes_to_the_next_in_line(harness: Harness) -> None:
    h = harness
    await sold_out_after_one_order(h)
    budi, citra = await joined(h, "Budi"), await joined(h, "Citra")
    await wait_for_royce(h, budi)
    await wait_for_royce(h, citra)
    await _raise_stock(h, "")
    await h.settle()
    assert len(offers(h, budi)) == 1
    assert await jobs.expire_waitlist_holds(h.db) == 0  # still within its 30 minutes
    async with h.db.transaction() as session:
        await session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.status == "offered")
            .values(hold_until=utcnow() - dt.timedelta(seconds=1))
        )
    assert await jobs.expire_waitlist_holds(h.db) == 1
    assert await jobs.expire_waitlist_holds(h.db) == 0  # a second scheduler: nothing
    await h.settle()
    assert len(offers(h, citra)) == 1
    assert len(offers(h, budi)) == 1  # not told twice about the same unit
    assert await entries(h) == [("lapsed", 0), ("offered", 1)]
    # Budi's old Order button finds it gone now
    (gone,) = await h.tap(budi, _choices_of(h, budi, "Pesan")[0][1], "Pesan")
    assert "sudah habis" in gone
    # Citra orders it
    await h.tap(citra, _choices_of(h, citra, "Pesan")[0][1], "Pesan")
    assert "Pesanan *JP-" in await finish_order(h, citra)
    assert await entries(h) == [("lapsed", 0), ("ordered", 0)]
    # Budi may join the line again, at its end
    assert "antrean ke-1" in await wait_for_royce(h, budi)


async def test_a_buyer_who_ordered_it_meanwhile_is_skipped(harness: Harness) -> None:
    h = harness
    first = await sold_out_after_one_order(h)
    budi, citra = await joined(h, "Budi"), await joined(h, "Citra")
    await wait_for_royce(h, budi)
    await wait_for_royce(h, citra)
    await _raise_stock(h, "")
    await h.tap(budi, _choices_of(h, budi, "Pesan")[0][1], "Pesan")
    await finish_order(h, budi)
    # another unit frees: it goes to Citra; Budi, who has ordered it, is not told again
    await _cancel(h, first)
    await h.settle()
    assert len(offers(h, budi)) == 1
    assert len(offers(h, citra)) == 1
    assert await entries(h) == [("ordered", 0), ("offered", 1)]


async def test_a_stock_raise_offers_one_each_and_leaves_the_rest_for_anyone(
    harness: Harness,
) -> None:
    h = harness
    await sold_out_after_one_order(h)
    budi, citra = await joined(h, "Budi"), await joined(h, "Citra")
    await wait_for_royce(h, budi)
    await wait_for_royce(h, citra)
    (stocked,) = await tina(h, "/stock 3 3")
    assert "2 ditawarkan" in stocked
    await h.settle()
    assert len(offers(h, budi)) == 1 and len(offers(h, citra)) == 1
    assert await royce_stock(h) == 1
    (listed,) = await tina(h, "/products DEMO")
    assert "Royce Nama Chocolate — Rp 250.000 · stok 1 · 2 antre" in listed
    # the holder may take their held unit and the free one
    await h.tap(budi, _choices_of(h, budi, "Pesan")[0][1], "Pesan")
    assert [t for t, _id in h.last_choices(budi)] == ["1", "2"]
    await finish_order(h, budi, "2")
    assert await royce_stock(h) == 0
    # someone new finds it sold out; Citra's hold is still hers
    dewi = await joined(h, "Dewi")
    assert "Stok habis" in await view(h, dewi)
    assert "disimpan untukmu" in await view(h, citra)
    assert [t for t, _id in h.last_choices(citra)] == ["Pesan", "Kembali"]


async def test_a_product_in_stock_offers_no_waitlist(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await view(h, buyer)
    assert [t for t, _id in h.last_choices(buyer)] == ["Pesan", "Kembali"]
    # an old "notify me" button for a product back in stock: order it instead
    product_id = int(h.last_choices(buyer)[0][1].rsplit(":", 1)[1])
    texts = await h.tap(buyer, f"shop:notify:{product_id}", "Kabari kalau ada")
    assert "masih tersedia" in texts[0]
    assert await entries(h) == []


async def test_the_waitlist_in_english(harness: Harness) -> None:
    h = harness
    await sold_out_after_one_order(h)
    buyer = phone()
    await h.say(buyer, "LANGUAGE", name="Ben")
    await h.tap_title(buyer, "English")
    await h.say(buyer, "JOIN DEMO")
    await h.tap_title(buyer, "Use Ben")
    await h.tap_title(buyer, "Yes, keep me posted")
    await h.say(buyer, "SEARCH Royce")
    shown = "\n".join(await h.tap_title(buyer, ROYCE))
    assert "Sold out" in shown
    assert [t for t, _id in h.last_choices(buyer)] == ["Notify me", "Back"]
    (answer,) = await h.tap_title(buyer, "Notify me")
    assert "let you know" in answer and "number 1 on the waitlist" in answer
    await tina(h, "/stock 3 1")
    await h.settle()
    (offer,) = [t for t in h.fake.texts_to(buyer) if "available again" in t]
    assert "Good news" in offer and "30 minutes" in offer
    assert [t for t, _id in h.last_choices(buyer)] == ["Order"]
    (asked,) = await h.tap_title(buyer, "Order")
    assert "How many" in asked or "how many" in asked
