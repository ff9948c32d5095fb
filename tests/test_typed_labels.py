"""A button's or a list row's label typed instead of tapped is the tap (issue #25), as a
rule for every step: while the message it belongs to is the last interactive one the
person got and the conversation has not moved since, and only when exactly one choice
carries that label. Dialogues on both databases, in Indonesian and English."""

from __future__ import annotations

from sqlalchemy import select

from storage.demo import DEMO_PHONE
from storage.models import Conversation, Product, Trip, User
from tests.conftest import Harness, phone
from tests.journeys import english, joined, order_one, photo, second_trip, tina


def titles(h: Harness, who: str) -> list[str]:
    return [title for title, _id in h.last_choices(who)]


async def cart_notes(h: Harness) -> list[str | None]:
    """The notes of the items in every cart, as the checkout would take them."""
    async with h.db.read() as session:
        rows = (await session.execute(select(Conversation.data))).scalars().all()
    return [item.get("n") for data in rows for item in (data or {}).get("cart", [])]


async def test_typed_labels_order_like_taps(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    typist = await joined(h, "Sari")
    tapper = await joined(h, "Budi")
    # the catalogue's "next page" row, its arrow left out
    await h.say(typist, "KATALOG")
    (page2,) = await h.say(typist, "berikutnya")
    assert "halaman 2/2" in page2
    # a list row's title typed (any case, with a trailing emoji) opens that product,
    # exactly as tapping the row does
    await h.say(typist, "CARI kit kat")
    await h.say(tapper, "CARI kit kat")
    assert "Kit Kat Matcha" in titles(h, typist)
    typed_card = await h.say(typist, "kit kat matcha 😍")
    tapped_card = await h.tap_title(tapper, "Kit Kat Matcha")
    assert typed_card == tapped_card and "*Kit Kat Matcha*" in typed_card[0]
    assert titles(h, typist) == ["Pesan", "Kembali"]
    # "Pesan" typed after the product card orders it: the quantity is asked
    typed_qty = await h.say(typist, "Pesan")
    tapped_qty = await h.tap_title(tapper, "Pesan")
    assert typed_qty == tapped_qty
    assert h.last_choices(typist) == h.last_choices(tapper)
    (note,) = await h.say(typist, "2")
    assert "Ketik di sini, atau ketuk Lewati" in note
    # "lewati" at the note step skips: no note, straight to the cart
    (cart,) = await h.say(typist, "lewati.")
    assert "Kit Kat Matcha" in cart and "Lewati" not in cart and "lewati" not in cart
    assert await cart_notes(h) == [None]
    # the rest of the order by labels typed, too
    (asked,) = await h.say(typist, "checkout")
    assert "alamat" in asked.lower()


async def test_typed_labels_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await english(h, buyer)
    await h.say(buyer, "CATALOG")
    (page2,) = await h.say(buyer, "next")
    assert "page 2/2" in page2
    await h.say(buyer, "SEARCH shiroi")
    (card,) = await h.say(buyer, "SHIROI KOIBITO 12")
    assert "*Shiroi Koibito 12*" in card
    assert titles(h, buyer) == ["Order", "Back"]
    (qty,) = await h.say(buyer, "order!")
    assert "How many *Shiroi Koibito 12*" in qty
    await h.say(buyer, "1")
    (cart,) = await h.say(buyer, "*Skip*")
    assert "Shiroi Koibito 12" in cart and "Skip" not in cart
    assert await cart_notes(h) == [None]
    # "Lewati" is not an English label: typed here it is the note as written
    await h.say(buyer, "SEARCH kit kat")
    await h.say(buyer, "Kit Kat Matcha")
    await h.say(buyer, "Order")
    await h.say(buyer, "1")
    await h.say(buyer, "Lewati")
    assert sorted(await cart_notes(h), key=str) == ["Lewati", None]


async def test_a_trip_row_typed_switches_the_trip(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await second_trip(h)
    buyer = await joined(h)
    await h.say(buyer, "JOIN SEOUL")
    await h.tap_title(buyer, "Ya, kabari aku")
    (menu,) = await h.say(buyer, "MENU")
    assert "Jastip Seoul" in menu
    assert "Jastip Tokyo Demo" in titles(h, buyer)
    (switched,) = await h.say(buyer, "jastip tokyo demo")
    assert "Jastip Tokyo Demo" in switched
    (page,) = await h.say(buyer, "KATALOG")
    assert "Katalog *Jastip Tokyo Demo*" in page
    # in English, the same row by its title
    await english(h, buyer)
    (menu_en,) = await h.say(buyer, "MENU")
    assert "Jastip Tokyo Demo" in menu_en and "Jastip Seoul" in titles(h, buyer)
    (switched_en,) = await h.say(buyer, "Jastip Seoul")
    assert "Jastip Seoul" in switched_en
    (page_en,) = await h.say(buyer, "CATALOG")
    assert "Jastip Seoul" in page_en


async def test_the_label_of_a_message_no_longer_current_is_no_tap(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await h.say(buyer, "CARI kit kat")
    await h.say(buyer, "Kit Kat Matcha")
    await h.say(buyer, "Pesan")
    # the product card is no longer the last message: "Pesan" is no quantity
    (again,) = await h.say(buyer, "Pesan")
    assert "Ketik jumlahnya dengan angka" in again
    # a row of the catalogue list, after the card replaced it, is not chosen either
    await h.say(buyer, "CARI matcha")
    await h.say(buyer, "Kit Kat Matcha")
    (other,) = await h.say(buyer, "Pocky Matcha")
    assert "Maaf, aku belum paham" in other and "*Pocky Matcha*" not in other
    # in English: the quantity asked, then the card's "Back" is no tap any more
    await english(h, buyer)
    await h.say(buyer, "SEARCH kit kat")
    await h.say(buyer, "Kit Kat Matcha")
    await h.say(buyer, "Order")
    (back,) = await h.say(buyer, "Back")
    assert "type the quantity as a number" in back


async def test_a_newer_message_from_someone_else_retires_the_labels(harness: Harness) -> None:
    """Tina's stock prompt is not the last interactive message once a proof with its
    buttons reached her from a buyer's update: its label typed then is no tap."""
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Kit Kat Matcha", "1")
    await tina(h, "/add")
    await photo(h, DEMO_PHONE)
    await tina(h, "Pocky Matcha")
    await tina(h, "25rb")
    assert titles(h, DEMO_PHONE) == ["Tanpa batas"]
    await photo(h, buyer)  # the transfer proof, forwarded to Tina with its buttons
    assert "Setujui" in titles(h, DEMO_PHONE)
    (refused,) = await tina(h, "Tanpa batas")
    assert "ditambahkan" not in refused
    async with h.db.read() as session:
        names = (await session.execute(select(Product.name))).scalars().all()
    assert "Pocky Matcha" not in names
    # a stock typed still finishes the wizard; labels of the next prompt count again
    (added,) = await tina(h, "5")
    assert "*Pocky Matcha* — Rp 25.000, stok 5" in added


async def test_an_ambiguous_label_goes_the_normal_way(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        trip = (await session.execute(select(Trip).where(Trip.code == "DEMO"))).scalar_one()
        for position, name in ((90, "Hello Panda"), (91, "HELLO PANDA!")):
            session.add(
                Product(trip_id=trip.id, name=name, price=50_000, stock=3, position=position)
            )
    buyer = await joined(h)
    await h.say(buyer, "CARI hello panda")
    assert sorted(titles(h, buyer)) == ["HELLO PANDA!", "Hello Panda"]
    (fell,) = await h.say(buyer, "hello panda")
    assert "Maaf, aku belum paham" in fell and "*Hello Panda*" not in fell
    # tapping still tells them apart
    await h.say(buyer, "CARI hello panda")
    (card,) = await h.tap_title(buyer, "HELLO PANDA!")
    assert "*HELLO PANDA!*" in card
    # in English the same
    await english(h, buyer)
    await h.say(buyer, "SEARCH hello panda")
    (fell_en,) = await h.say(buyer, "Hello Panda")
    assert "Sorry, I didn't get that" in fell_en


async def test_a_name_on_a_button_is_never_kept_in_clear(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = phone()
    await h.say(buyer, "JOIN DEMO", name="Wulandari")
    assert "Pakai Wulandari" in titles(h, buyer)
    async with h.db.read() as session:
        kept = (await session.execute(select(Conversation.choices))).scalars().all()
    assert kept and "wulandari" not in str(kept).lower()
    # the button with the name, typed, is its tap: the profile name is used
    (consent,) = await h.say(buyer, "pakai wulandari")
    assert "Mau dapat kabar" in consent and "Ya, kabari aku" in titles(h, buyer)
    async with h.db.read() as session:
        names = (await session.execute(select(User.display_name))).scalars().all()
    assert "Wulandari" in names and "pakai wulandari" not in names
