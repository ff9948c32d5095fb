"""The public pages a buyer meets before chatting: the trip page, the jastiper's page, the
counted short link and the product photos — on both databases, through the real app."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from bot import simulate
from bot.keys import MEDIA
from bot.settings import ConfigError, Settings
from services import links
from storage.demo import DEMO_LINK, DEMO_PHONE, seed_demo
from storage.models import LinkClick, Product, ShortLink, Trip, utcnow
from tests.conftest import Harness, phone

SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


class Parsed(HTMLParser):
    """The bits of a page a browser and a link preview look at."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[tuple[str, str]] = []  # (href, class)
        self.images: list[dict[str, str]] = []
        self.title = ""
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and "content" in a:
            self.meta[a.get("property") or a.get("name", "")] = a["content"]
        elif tag == "a":
            self.links.append((a.get("href", ""), a.get("class", "")))
        elif tag == "img":
            self.images.append(a)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False if tag == "title" else self._in_title

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def cards(html: str) -> dict[str, str]:
    """Product name → the HTML of its card."""
    found = re.findall(r'<li class="card[^"]*">.*?</li>', html, flags=re.S)
    return {re.search(r'<p class="name">(.*?)</p>', c, re.S).group(1): c for c in found}  # type: ignore[union-attr]


def assert_secure(resp: Any) -> None:
    for name, value in SECURITY.items():
        assert resp.headers.get(name) == value, name
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    # the one script (the copy button) is allowed by its hash: nothing inline or fetched
    (scripts,) = re.findall(r"script-src ([^;]*)", csp)
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/=]+'", scripts), scripts


def photo(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buf, "JPEG")
    return buf.getvalue()


async def seed_with_photos(h: Harness) -> None:
    async with h.db.transaction() as session:
        await seed_demo(session, h.cipher, h.app[MEDIA])


async def tina(h: Harness, text: str) -> list[str]:
    return await h.say(DEMO_PHONE, text, name="Tina")


async def test_the_demo_trip_page_sells(harness: Harness) -> None:
    h = harness
    await seed_with_photos(h)
    resp = await h.client.get("/t/demo")
    assert resp.status == 200
    assert_secure(resp)
    html = await resp.text()
    page = Parsed(html)
    assert page.title.startswith("Jastip Tokyo Demo")
    assert "Tokyo, Jepang" in html and "Tutup dalam" in html
    # the catalogue: every demo product, its price in Rupiah, "habis" only when sold out
    shown = cards(html)
    assert len(shown) == 12
    assert "Rp 145.000" in shown["Tokyo Banana 8 pcs"]
    assert "Rp 320.000" in shown["Pokemon Plush Pikachu"]
    assert "habis" in shown["Sanrio Tumbler"]
    assert "habis" not in shown["Tokyo Banana 8 pcs"]
    # the join button, the QR of the same link, the jastiper's page, the short link
    join = f"https://wa.me/{h.settings.wa_business_number}?text=JOIN%20DEMO"
    assert (join, "join") in page.links
    assert "Gabung lewat WhatsApp" in html
    qr = next(i for i in page.images if i["src"] == "/t/DEMO/qr.png")
    assert qr["alt"]
    qr_resp = await h.client.get("/t/DEMO/qr.png")
    assert qr_resp.status == 200 and qr_resp.content_type == "image/png"
    assert Image.open(io.BytesIO(await qr_resp.read())).size[0] > 100
    assert ("/j/tina", "") in page.links
    assert f"{h.settings.public_base_url}/s/{DEMO_LINK}" in html
    # a rich preview on WhatsApp and Instagram: title, description, the trip's share card
    image_url = page.meta["og:image"]
    assert image_url.startswith(f"{h.settings.public_base_url}/t/DEMO/card.png?v=")
    assert (page.meta["og:image:width"], page.meta["og:image:height"]) == ("1200", "630")
    assert page.meta["og:image:type"] == "image/png"
    assert page.meta["og:title"] == page.meta["twitter:title"] == "Jastip Tokyo Demo"
    assert "Tina" in page.meta["og:description"] and "Tokyo" in page.meta["og:description"]
    assert page.meta["twitter:image"] == image_url
    assert page.meta["twitter:card"] == "summary_large_image"
    assert page.meta["og:url"] == f"{h.settings.public_base_url}/t/DEMO"
    # the card is there, as big as it says, with the first products' photos on it
    card = await h.client.get(image_url.removeprefix(h.settings.public_base_url))
    assert card.status == 200 and card.content_type == "image/png"
    drawn = Image.open(io.BytesIO(await card.read())).convert("RGB")
    assert drawn.size == (1200, 630)
    async with h.db.read() as session:
        first = (await session.execute(select(Product).where(Product.position == 1))).scalar_one()
    thumb = await h.client.get(f"/p/{first.id}/thumb.jpg")
    thumb_image = Image.open(io.BytesIO(await thumb.read())).convert("RGB")
    photo_colour: tuple[int, ...] = thumb_image.getpixel((200, 200))  # type: ignore[assignment]
    tile: tuple[int, ...] = drawn.getpixel((744, 124))  # type: ignore[assignment]
    assert max(abs(a - b) for a, b in zip(tile, photo_colour, strict=True)) < 40, (
        tile,
        photo_colour,
    )


def tile_links(html: str) -> dict[str, str]:
    """Product name → where its tile leads."""
    return {
        re.search(r'<p class="name">(.*?)</p>', c, re.S).group(1): re.search(  # type: ignore[union-attr]
            r'<a href="([^"]+)"', c
        ).group(1)  # type: ignore[union-attr]
        for c in cards(html).values()
    }


async def test_every_tile_opens_the_product_with_an_order_on_whatsapp_button(
    harness: Harness,
) -> None:
    h = harness
    await seed_with_photos(h)
    async with h.db.transaction() as session:
        royce = (await session.execute(select(Product).where(Product.position == 3))).scalar_one()
        royce.stock = 2
    html = await (await h.client.get("/t/DEMO")).text()
    # tiles link to their product, say how many are left in words
    links_of = tile_links(html)
    assert links_of["Royce Nama Chocolate"] == "/t/DEMO/p/3"
    assert links_of["Sanrio Tumbler"] == "/t/DEMO/p/12"
    shown = cards(html)
    assert "Tinggal 2 lagi!" in shown["Royce Nama Chocolate"]
    assert "Stok 20" in shown["Tokyo Banana 8 pcs"]
    # the join button again at the end, held at the bottom of the screen while scrolling
    join = f"https://wa.me/{h.settings.wa_business_number}?text=JOIN%20DEMO"
    bar = re.search(r'<div class="bar">(.*?)</div>', html, re.S)
    assert bar and join in bar.group(1) and html.index('class="bar"') > html.index("Sanrio")
    # the share link: a copy button (hidden until the script shows it), a hint without it
    assert f'data-copy="{h.settings.public_base_url}/s/{DEMO_LINK}"' in html
    assert "tekan lama untuk menyalin" in html

    resp = await h.client.get("/t/DEMO/p/3")
    assert resp.status == 200
    assert_secure(resp)
    product = await resp.text()
    page = Parsed(product)
    assert page.title == "Royce Nama Chocolate — Jastip Tokyo Demo"
    assert "Rp 250.000" in product and "Tinggal 2 lagi!" in product
    assert "Cokelat nama Royce original, 20 potong." in product
    assert any("/full.jpg" in i["src"] and i["alt"] == "Royce Nama Chocolate" for i in page.images)
    order = f"{join}%203"  # JOIN DEMO 3: the bot joins and opens product 3
    assert (order, "join") in page.links and "Pesan lewat WhatsApp" in product
    assert ("/t/DEMO", "back") in page.links
    assert page.meta["og:title"] == "Royce Nama Chocolate"
    assert "Rp 250.000" in page.meta["og:description"]
    assert page.meta["og:url"] == f"{h.settings.public_base_url}/t/DEMO/p/3"

    sold_out = await (await h.client.get("/t/DEMO/p/12?lang=en")).text()
    assert "Sold out — join the queue on WhatsApp" in sold_out
    assert f'href="{join}%2012"' in sold_out
    assert 'href="/t/DEMO?lang=en"' in sold_out
    for missing in ("/t/DEMO/p/99", "/t/DEMO/p/99999999999", "/t/NOPE/p/1"):
        gone = await h.client.get(missing)
        assert gone.status == 404, missing
        assert "tidak" in await gone.text()
    await tina(h, "/close DEMO")
    closed = await (await h.client.get("/t/DEMO/p/3")).text()
    assert "wa.me" not in closed and "sudah ditutup" in closed


async def test_the_order_button_text_joins_and_opens_that_product(harness: Harness) -> None:
    """What the product page's button pre-fills, ``JOIN DEMO 3``: a new buyer joins (name,
    consent) and lands on product 3; a buyer already in gets it straight away."""
    h = harness
    await h.seed_demo()
    buyer = phone()
    greeting = await h.say(buyer, "JOIN DEMO 3", name="Sari")
    assert "Jastip Tokyo Demo" in greeting[0] and "Royce" not in " ".join(greeting)
    await h.tap_title(buyer, "Pakai Sari")
    opened = await h.tap_title(buyer, "Ya, kabari aku")
    assert "Royce Nama Chocolate" in opened[-1] and "Rp 250.000" in " ".join(opened)
    assert "Stok: 10" in " ".join(opened)
    assert "Pesan" in [title for title, _id in h.last_choices(buyer)]
    again = await h.say(buyer, "JOIN DEMO 5")
    assert "Calbee Jagabee" in " ".join(again)
    nothing = await h.say(buyer, "JOIN DEMO 77")
    assert "Produk itu sudah tidak tersedia." in " ".join(nothing)
    plain = await h.say(buyer, "JOIN DEMO")  # the old link still lands on the menu
    assert "Royce" not in " ".join(plain) and "Calbee" not in " ".join(plain)


async def test_pages_speak_english_when_asked(harness: Harness) -> None:
    h = harness
    await seed_with_photos(h)
    by_query = await (await h.client.get("/t/DEMO?lang=en")).text()
    assert "Join on WhatsApp" in by_query and "sold out" in cards(by_query)["Sanrio Tumbler"]
    assert 'href="/j/tina?lang=en"' in by_query  # the chosen language follows the links
    by_header = await (
        await h.client.get("/t/DEMO", headers={"Accept-Language": "en-US,en;q=0.9,id;q=0.5"})
    ).text()
    assert "Join on WhatsApp" in by_header
    indonesian = await (
        await h.client.get("/t/DEMO", headers={"Accept-Language": "id-ID,en;q=0.5"})
    ).text()
    assert "Gabung lewat WhatsApp" in indonesian
    jastiper = await (await h.client.get("/j/tina?lang=en")).text()
    assert "Open trips" in jastiper and "Jastip by Tina" in jastiper


async def test_a_trip_made_in_chat_gets_a_counted_short_link_and_an_escaped_page(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/close DEMO")  # a past trip on Tina's page
    # Given a trip whose title and product a jastiper typed with markup in them
    await tina(h, "/trip new")
    await tina(h, "<script>alert(1)</script>")
    await tina(h, "Seoul <b>Korea</b>")
    await tina(h, "20-01-2099")
    await h.tap_title(DEMO_PHONE, "Lunas")
    await tina(h, "0")
    await h.tap_title(DEMO_PHONE, "Pakai rekening ini")
    opened = h.fake.sent_to(DEMO_PHONE)[-2]["text"]["body"]
    async with h.db.read() as session:
        trip = (await session.execute(select(Trip).where(Trip.code != "DEMO"))).scalar_one()
        link = (
            await session.execute(select(ShortLink).where(ShortLink.trip_id == trip.id))
        ).scalar_one()
    # Then the reply shows its short link
    assert f"Link pendek (klik dihitung): {h.settings.public_base_url}/s/{link.slug}" in opened
    media_id = h.fake.add_media(photo(1600, 1200), "image/jpeg")
    caption = '/add <script>alert(2)</script> "Kimchi" | 50rb | 0'
    await h.send(simulate.media(DEMO_PHONE, "image", media_id, "image/jpeg", caption=caption))

    # When a buyer opens the page
    resp = await h.client.get(f"/t/{trip.code}")
    html = await resp.text()
    # Then nothing typed runs: no markup of theirs survives, the text reads as typed
    assert "<script>alert" not in html and "<b>Korea" not in html
    assert html.count("<script>") == 1  # ours: the copy button's, allowed by its hash
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &quot;Kimchi&quot;" in html
    page = Parsed(html)
    assert page.meta["og:title"] == "<script>alert(1)</script>"  # as text, once parsed
    assert "habis" in html  # stock 0
    assert_secure(resp)
    # and the new trip's short link goes to its join link
    follow = await h.client.get(f"/s/{link.slug}", allow_redirects=False)
    assert follow.status == 302
    assert follow.headers["Location"].endswith(f"?text=JOIN%20{trip.code}")

    # the product photo: a thumbnail and a full image for a phone, cacheable
    (product,) = [c for c in page.images if "/thumb.jpg" in c["src"]]
    thumb = await h.client.get(product["src"])
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(await thumb.read())).size == (400, 300)
    assert "public" in thumb.headers["Cache-Control"]
    assert "max-age=" in thumb.headers["Cache-Control"]
    assert_secure(thumb)
    full = await h.client.get(product["src"].replace("/thumb.jpg", "/full.jpg"))
    assert Image.open(io.BytesIO(await full.read())).size == (1080, 810)
    again = await h.client.get(product["src"], headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status == 304
    renditions = list((h.settings.media_dir / "renditions").rglob("*.jpg"))
    assert len(renditions) == 2  # made once each, kept in storage

    # Tina's own page: the new trip open, with its cover and closing date; DEMO past
    resp = await h.client.get("/j/tina")
    assert resp.status == 200
    assert_secure(resp)
    mine = await resp.text()
    open_part, past_part = mine.split("Trip sebelumnya")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in open_part and "20 Jan 2099" in open_part
    assert f'href="/t/{trip.code}"' in open_part and "/thumb.jpg" in open_part
    assert "Jastip Tokyo Demo" in past_part and "Jastip Tokyo Demo" not in open_part


async def test_a_short_link_redirects_counts_clicks_per_day_and_shows_them_in_chat(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    join = f"https://wa.me/{h.settings.wa_business_number}?text=JOIN%20DEMO"
    for _click in range(2):
        resp = await h.client.get(f"/s/{DEMO_LINK}", allow_redirects=False)
        assert resp.status == 302
        assert resp.headers["Location"] == join
        assert resp.headers["Cache-Control"] == f"private, max-age={h.settings.worker_cache_ttl}"
        assert_secure(resp)
    async with h.db.read() as session:
        rows = (await session.execute(select(LinkClick.day, LinkClick.count))).all()
    assert rows == [(links.day_of(utcnow()), 2)]
    (summary,) = await tina(h, "/trip DEMO")
    assert "Klik link: 2 (hari ini 2) · Peserta: 0 · Pesanan: 0" in summary
    assert f"Link pendek: {h.settings.public_base_url}/s/{DEMO_LINK}" in summary
    # a buyer who followed it joins; the jastiper sees clicks beside participants
    await h.say(phone(), "JOIN DEMO", name="Sari")
    (summary,) = await tina(h, "/trip DEMO")
    assert "Klik link: 2 (hari ini 2) · Peserta: 1" in summary


@pytest.mark.parametrize(
    "agent",
    [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "WhatsApp/2.23.20.0 A",
        "Twitterbot/1.0",
    ],
)
async def test_a_short_link_shows_link_previews_the_trip_and_sends_people_on(
    harness: Harness, agent: str
) -> None:
    """The link a jastiper shares on Instagram and WhatsApp: a preview crawler gets the
    trip's Open Graph page with its 1200×630 card (and is not counted as a click); a
    person's browser gets the 302 to the WhatsApp join link."""
    h = harness
    await h.seed_demo()
    crawled = await h.client.get(
        f"/s/{DEMO_LINK}", headers={"User-Agent": agent}, allow_redirects=False
    )
    assert crawled.status == 200
    page = Parsed(await crawled.text())
    assert page.meta["og:title"] == "Jastip Tokyo Demo"
    assert page.meta["og:image"].startswith(f"{h.settings.public_base_url}/t/DEMO/card.png")
    assert (page.meta["og:image:width"], page.meta["og:image:height"]) == ("1200", "630")
    browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    person = await h.client.get(
        f"/s/{DEMO_LINK}", headers={"User-Agent": browser}, allow_redirects=False
    )
    assert person.status == 302
    assert person.headers["Location"].startswith("https://wa.me/")
    async with h.db.read() as session:
        counted = (await session.execute(select(LinkClick.count))).scalars().all()
    assert counted == [1]  # the person, not the crawler


async def test_unknown_things_are_a_friendly_404(harness: Harness) -> None:
    h = harness
    await seed_with_photos(h)
    for path, text in [
        ("/t/NOPE", "Trip NOPE tidak ditemukan"),
        ("/j/nobody", "Halaman jastiper ini tidak ditemukan"),
        ("/s/zzzzzz", "Link ini tidak ditemukan"),
        ("/t/NOPE?lang=en", "Trip NOPE was not found"),
    ]:
        resp = await h.client.get(path, allow_redirects=False)
        assert resp.status == 404, path
        assert text in await resp.text()
        assert_secure(resp)
    async with h.db.transaction() as session:
        product = (
            await session.execute(select(Product).where(Product.position == 2))
        ).scalar_one()
        product.hidden = True
    for path in [f"/p/{product.id}/thumb.jpg", f"/p/{product.id + 100}/thumb.jpg"]:
        assert (await h.client.get(path)).status == 404
    assert (await h.client.get(f"/p/{product.id - 1}/huge.jpg")).status == 404
    async with h.db.read() as session:
        clicks = (await session.execute(select(LinkClick))).all()
    assert clicks == []


async def test_jastipers_get_unique_slugs_from_their_names(harness: Harness) -> None:
    from services.accounts import add_jastiper
    from storage.models import Jastiper

    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await add_jastiper(session, h.cipher, phone=phone(), name="Tina")
        await add_jastiper(session, h.cipher, phone=phone(), name="Dewi Ayu Sö")
    async with h.db.read() as session:
        slugs = set((await session.execute(select(Jastiper.slug))).scalars().all())
    assert slugs == {"tina", "tina-2", "dewi-ayu-so"}
    resp = await h.client.get("/j/tina-2")
    assert resp.status == 200 and "Belum ada trip yang buka." in await resp.text()


@pytest.mark.parametrize(("value", "ttl"), [(None, 300), ("60", 60), ("0", 0)])
def test_worker_cache_ttl_setting(value: str | None, ttl: int, tmp_path: Path) -> None:
    env = {"JASTIPIN_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["WORKER_CACHE_TTL"] = value
    assert Settings.from_env(env).worker_cache_ttl == ttl


def test_a_negative_worker_cache_ttl_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WORKER_CACHE_TTL"):
        Settings.from_env({"JASTIPIN_DATA_DIR": str(tmp_path), "WORKER_CACHE_TTL": "-1"})


async def test_a_jastiper_sets_her_page_from_chat(harness: Harness) -> None:
    """``/profile``: a bio, links and a photo captioned /profile as the avatar, shown on
    /j/tina; the bio and links are sealed at rest; a buyer cannot set anything."""
    from sqlalchemy import text as sql

    h = harness
    await h.seed_demo()
    shown = " ".join(await tina(h, "/profile"))
    assert "/profile bio" in shown and f"{h.settings.public_base_url}/j/tina" in shown
    (saved,) = await tina(h, "/profile bio Jastip Jepang & Korea tiap bulan.\nPO buka tgl 1")
    assert saved.startswith("Bio tersimpan")
    (added,) = await tina(h, "/profile link @tinajastip")
    assert "https://instagram.com/tinajastip" in added and "(1 dari 5)" in added
    await tina(h, "/profile link tiktok.com/@tina.jastip")
    # bad input: a clear answer, nothing lost
    (bad,) = await tina(h, "/profile link bukan sebuah link")
    assert "Itu bukan alamat web" in bad
    (long,) = await tina(h, "/profile bio " + "x" * 301)
    assert "Bio maksimal 300 huruf (punyamu 301)." in long
    media_id = h.fake.add_media(photo(800, 600), "image/jpeg")
    sent = await h.send(
        simulate.media(DEMO_PHONE, "image", media_id, "image/jpeg", caption="/profile")
    )
    assert "Foto profil tersimpan" in sent[0]["text"]["body"]
    # a buyer typing it changes nothing
    await h.say(phone(), "/profile bio ganti", name="Sari")

    resp = await h.client.get("/j/tina")
    assert_secure(resp)
    mine = await resp.text()
    page = Parsed(mine)
    assert "Jastip Jepang &amp; Korea tiap bulan.\nPO buka tgl 1" in mine
    assert "ganti" not in mine
    assert ("https://instagram.com/tinajastip", "") in page.links
    assert ("https://tiktok.com/@tina.jastip", "") in page.links
    assert 'rel="nofollow noopener ugc"' in mine
    assert page.meta["og:description"].startswith("Jastip Jepang & Korea")
    (avatar,) = [i for i in page.images if i.get("class") == "avatar"]
    assert avatar["alt"] == "Foto profil"
    got = await h.client.get(avatar["src"])
    assert got.status == 200 and got.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(await got.read())).size == (400, 300)
    async with h.db.read() as session:
        raw = (await session.execute(sql("SELECT bio, links FROM jastipers"))).one()
    assert b"Jepang" not in bytes(raw[0]) and b"tinajastip" not in bytes(raw[1])

    (gone,) = await tina(h, "/profile links off")
    assert "dihapus" in gone
    await tina(h, "/profile bio off")
    after = await (await h.client.get("/j/tina")).text()
    assert "instagram.com" not in after and "Korea tiap bulan" not in after
    assert (await h.client.get("/j/nobody/avatar.jpg")).status == 404
