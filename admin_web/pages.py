"""HTML of the public pages (trip, jastiper, not found), mobile first.

Plain string templates: every value typed by a person (titles, names, destinations,
product names and descriptions) goes through :func:`e` (``html.escape``, quotes too),
and every text of ours through the catalogue. The one stylesheet is inline and allowed
by its hash in the Content-Security-Policy. One small constant script (the copy-link
button), allowed by its hash too, is the only script; every page works without it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import html
import urllib.parse
from collections.abc import Iterable

from locales import Translator, _
from services.links import JAKARTA
from services.photos import tag
from storage.models import Product, Trip

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f5f6f7;color:#1d1d1f;line-height:1.45}
main{max-width:40rem;margin:0 auto;padding:1rem}
header h1{font-size:1.5rem;margin:.2rem 0 .4rem}
a{color:#0b6e4f}
.meta{margin:.2rem 0;color:#444}
.countdown{display:inline-block;background:#fff3cd;color:#6b4e00;border-radius:1rem;
padding:.15rem .7rem;font-weight:600;font-size:.9rem}
.closed{background:#eee;color:#555}
.join{display:block;text-align:center;background:#075e54;color:#fff;padding:.9rem 1rem;
border-radius:.7rem;text-decoration:none;font-weight:700;font-size:1.1rem;margin:1rem 0 .5rem}
.join:focus-visible,.card a:focus-visible{outline:3px solid #1d1d1f;outline-offset:2px}
.bar{position:sticky;bottom:0;padding:.5rem 0 .7rem;background:#f5f6f7;
box-shadow:0 -6px 8px -6px rgba(0,0,0,.25)}
.bar .join{margin:0}
.share{font-size:.9rem;color:#555;word-break:break-all}
.share button{font:inherit;font-weight:600;background:#fff;color:#0b6e4f;
border:1px solid #0b6e4f;border-radius:.5rem;padding:.2rem .7rem;margin-left:.3rem}
.qr{display:flex;gap:1rem;align-items:center;background:#fff;border-radius:.7rem;
padding:.7rem;margin:.8rem 0}
.qr img{width:8.5rem;height:8.5rem}
h2{font-size:1.15rem;margin:1.4rem 0 .6rem}
.grid{list-style:none;padding:0;margin:0;display:grid;gap:.7rem;
grid-template-columns:repeat(auto-fill,minmax(9.5rem,1fr))}
.card{background:#fff;border-radius:.7rem;overflow:hidden}
.card a{display:flex;flex-direction:column;height:100%;color:inherit;text-decoration:none}
.card img,.card .nophoto,.product img,.product .nophoto{width:100%;height:auto;
aspect-ratio:1;object-fit:cover;display:block;background:#e4e7ea}
.card .body{padding:.5rem .6rem .7rem}
.card .name{font-weight:600;margin:0 0 .2rem;font-size:.95rem}
.card .desc{font-size:.8rem;color:#666;margin:.2rem 0 0}
.stock{display:block;font-size:.85rem;color:#444;margin-top:.15rem}
.stock.low{color:#8a3b00;font-weight:600}
.price{font-weight:700;color:#0b6e4f}
.soldout .price{color:#6b6b6b;text-decoration:line-through}
.badge{display:inline-block;background:#c62828;color:#fff;border-radius:.4rem;
padding:0 .4rem;font-size:.75rem;font-weight:700;margin-left:.3rem;text-transform:uppercase}
.product{background:#fff;border-radius:.7rem;overflow:hidden}
.product .body{padding:.8rem 1rem 1rem}
.product h1{font-size:1.35rem;margin:0 0 .3rem}
.product .price{font-size:1.2rem}
.product .desc{white-space:pre-line;margin:.7rem 0 0}
.back{display:inline-block;margin:0 0 .7rem}
.trips{list-style:none;padding:0;margin:0;display:grid;gap:.7rem}
.trip{display:flex;gap:.7rem;background:#fff;border-radius:.7rem;overflow:hidden;
text-decoration:none;color:inherit}
.trip img,.trip .nophoto{width:6.5rem;height:6.5rem;object-fit:cover;flex:none;
background:#e4e7ea}
.trip .body{padding:.5rem .6rem}
.past .trip{background:#eceef0}
.avatar{width:6rem;height:6rem;border-radius:50%;object-fit:cover;display:block;
background:#e4e7ea}
.profile{display:flex;gap:1rem;align-items:center}
.bio{white-space:pre-line;margin:.6rem 0}
.links{list-style:none;padding:0;margin:.6rem 0;display:grid;gap:.4rem}
.links a{display:block;background:#fff;border:1px solid #0b6e4f;border-radius:.6rem;
padding:.55rem .8rem;text-align:center;font-weight:600;text-decoration:none;
word-break:break-all}
footer{margin:2rem 0 1rem;font-size:.85rem;color:#595959;text-align:center}
"""
# The copy-link button (progressive enhancement): the page works without scripts (the
# link is shown with "long-press to copy"); where scripts run, this one constant script,
# allowed by its hash in the Content-Security-Policy, shows a button that copies it.
SCRIPT = """
document.querySelectorAll("[data-nojs]").forEach(function (x) { x.hidden = true; });
document.querySelectorAll("button[data-copy]").forEach(function (b) {
  b.hidden = false;
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(b.dataset.copy).then(function () {
      b.textContent = b.dataset.done;
    });
  });
});
"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CSP = (
    "default-src 'none'; img-src 'self'; "
    f"style-src 'sha256-{CSS_HASH}'; script-src 'sha256-{SCRIPT_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
OG_LOCALE = {"id": "id_ID", "en": "en_US"}

# the texts of the pages (in the catalogue; kept out of f-strings, where Babel cannot see)
CLOSED_BADGE = _("Pesanan sudah ditutup")
CLOSES_IN_HOURS = _("Tutup dalam {hours} jam")
CLOSES_IN_DAYS = _("Tutup dalam {days} hari {hours} jam")
SOLD_OUT = _("habis")
TRIP_DESCRIPTION = _("Jastip {destination} oleh {name}, tutup {closes}. Pesan lewat WhatsApp.")
JOIN_BUTTON = _("Gabung lewat WhatsApp")
QR_ALT = _("Kode QR")
QR_CAPTION = _("Scan untuk gabung lewat WhatsApp")
TRIP_CODE = _("Kode trip")
SHARE = _("Bagikan link ini")
TRIP_CLOSED = _("Trip ini sudah ditutup dan tidak menerima pesanan baru.")
NO_PRODUCTS = _("Produk belum ditambahkan.")
DESTINATION = _("Tujuan")
JASTIPER = _("Jastiper")
CLOSES_ON = _("Pesanan ditutup")
CATALOGUE = _("Katalog")
NO_OPEN_TRIPS = _("Belum ada trip yang buka.")
PAST_TRIPS = _("Trip sebelumnya")
JASTIPER_TITLE = _("Jastip oleh {name}")
JASTIPER_DESCRIPTION = _("{count} trip yang buka. Pesan lewat WhatsApp.")
OPEN_TRIPS = _("Trip yang buka")
NOT_FOUND = _("Halaman tidak ditemukan")
AVATAR_ALT = _("Foto profil")
STOCK_ANY = _("Stok tersedia")
STOCK_LOW = _("Tinggal {n} lagi!")
STOCK_LEFT = _("Stok {n}")
STOCK_NONE = _("Stok habis")
LOW_STOCK = 5  # at or below this many left, the page says "only n left!"
ORDER_BUTTON = _("Pesan lewat WhatsApp")
WAITLIST_BUTTON = _("Habis — antre lewat WhatsApp")
BACK_TO_TRIP = _("← Kembali ke {title}")
COPY_LINK = _("Salin link")
COPIED = _("Link disalin ✓")
LONG_PRESS = _("(tekan lama untuk menyalin)")
PRODUCT_DESCRIPTION = _("{price} · Jastip {destination} oleh {name}. Pesan lewat WhatsApp.")


def e(value: object) -> str:
    """Escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """What every page needs: its language, addresses and the moment it is drawn."""

    t: Translator
    base_url: str
    lang_param: bool  # the language came from ?lang=: links keep it
    now: dt.datetime

    def href(self, path: str) -> str:
        return f"{path}?lang={self.t.locale}" if self.lang_param else path

    def absolute(self, path: str) -> str:
        return f"{self.base_url}{path}"


def photo_path(product: Product, size: str) -> str:
    assert product.image_key
    return f"/p/{product.id}/{size}.jpg?v={tag(product.image_key)}"


def countdown(p: Page, closes_on: dt.date | None, is_open: bool) -> str:
    """``Tutup dalam 3 hari 4 jam``: until the end of the closing day in Jakarta."""
    if not is_open:
        return f'<span class="countdown closed">{e(p.t(CLOSED_BADGE))}</span>'
    if closes_on is None:
        return ""
    deadline = dt.datetime.combine(closes_on + dt.timedelta(days=1), dt.time(), tzinfo=JAKARTA)
    left = deadline - p.now
    if left <= dt.timedelta(0):
        text = p.t(CLOSED_BADGE)
    elif left.days == 0:
        text = p.t(CLOSES_IN_HOURS, hours=max(1, left.seconds // 3600))
    else:
        text = p.t(CLOSES_IN_DAYS, days=left.days, hours=left.seconds // 3600)
    return f'<span class="countdown">{e(text)}</span>'


CARD_SIZE = (1200, 630)  # services/sharecard.py: what link previews show


def _meta(
    p: Page,
    *,
    title: str,
    description: str,
    path: str,
    image: Product | None,
    card: str | None = None,
) -> str:
    """Open Graph and Twitter tags; ``card`` (the trip's generated 1200×630 share card)
    wins over a product photo as the preview image."""
    tags = [
        ("name", "description", description),
        ("property", "og:type", "website"),
        ("property", "og:site_name", "Jastipin"),
        ("property", "og:locale", OG_LOCALE.get(p.t.locale, "id_ID")),
        ("property", "og:title", title),
        ("property", "og:description", description),
        ("property", "og:url", p.absolute(path)),
        ("name", "twitter:card", "summary_large_image" if image or card else "summary"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", description),
    ]
    if card is not None:
        url = p.absolute(card)
        tags += [
            ("property", "og:image", url),
            ("property", "og:image:type", "image/png"),
            ("property", "og:image:width", str(CARD_SIZE[0])),
            ("property", "og:image:height", str(CARD_SIZE[1])),
            ("property", "og:image:alt", title),
            ("name", "twitter:image", url),
        ]
    elif image is not None:
        url = p.absolute(photo_path(image, "full"))
        tags += [
            ("property", "og:image", url),
            ("property", "og:image:type", "image/jpeg"),
            ("property", "og:image:alt", image.name),
            ("name", "twitter:image", url),
        ]
    return "\n".join(f'<meta {kind}="{e(key)}" content="{e(value)}">' for kind, key, value in tags)


def _document(
    p: Page, *, title: str, meta: str, body: str, path: str, script: bool = False
) -> str:
    other = "en" if p.t.locale == "id" else "id"
    switch = (
        f'<a href="{e(path)}?lang={other}" hreflang="{other}">'
        f"{'English' if other == 'en' else 'Bahasa Indonesia'}</a>"
    )
    tail = f"<script>{SCRIPT}</script>" if script else ""
    return f"""<!doctype html>
<html lang="{e(p.t.locale)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
{meta}
<style>{CSS}</style></head>
<body><main>
{body}
<footer>Jastipin · {switch}</footer>
</main>{tail}</body></html>"""


def stock_words(p: Page, stock: int | None) -> tuple[str, bool]:
    """(``Tinggal 2 lagi!``, is low): what the stock left means to a buyer."""
    if stock is None:
        return p.t(STOCK_ANY), False
    if stock == 0:
        return p.t(STOCK_NONE), False
    if stock <= LOW_STOCK:
        return p.t(STOCK_LOW, n=stock), True
    return p.t(STOCK_LEFT, n=stock), False


def _stock(p: Page, stock: int | None) -> str:
    words, low = stock_words(p, stock)
    return f'<span class="stock{" low" if low else ""}">{e(words)}</span>'


def product_path(trip: Trip, product: Product) -> str:
    return f"/t/{urllib.parse.quote(trip.code)}/p/{product.position}"


def _product(p: Page, trip: Trip, product: Product) -> str:
    sold_out = product.stock == 0
    if product.image_key:
        image = (
            f'<img src="{e(photo_path(product, "thumb"))}" '
            f'srcset="{e(photo_path(product, "thumb"))} 400w, '
            f'{e(photo_path(product, "full"))} 1080w" '
            'sizes="(max-width: 40rem) 50vw, 20rem" '
            f'alt="{e(product.name)}" loading="lazy" width="400" height="400">'
        )
    else:
        image = '<div class="nophoto"></div>'
    badge = f'<span class="badge">{e(p.t(SOLD_OUT))}</span>' if sold_out else ""
    desc = f'<p class="desc">{e(product.description)}</p>' if product.description else ""
    stock = "" if sold_out else _stock(p, product.stock)
    return (
        f'<li class="card{" soldout" if sold_out else ""}">'
        f'<a href="{e(p.href(product_path(trip, product)))}">{image}<div class="body">'
        f'<p class="name">{e(product.name)}</p>'
        f'<span class="price">{e(p.t.money(product.price))}</span>{badge}{stock}{desc}'
        "</div></a></li>"
    )


def _share(p: Page, short_slug: str) -> str:
    """The short link, a copy button where scripts run, a long-press hint where not."""
    t = p.t
    short = p.absolute(f"/s/{short_slug}")
    return (
        f'<p class="share">{e(t(SHARE))}: <a href="{e(short)}">{e(short)}</a> '
        f'<button type="button" data-copy="{e(short)}" data-done="{e(t(COPIED))}" hidden>'
        f"{e(t(COPY_LINK))}</button> <small data-nojs>{e(t(LONG_PRESS))}</small></p>"
    )


def trip_page(
    p: Page,
    trip: Trip,
    *,
    jastiper_name: str,
    jastiper_slug: str | None,
    products: list[Product],
    join_link: str,
    short_slug: str | None,
    is_open: bool,
) -> str:
    """The trip page a jastiper links from Instagram."""
    t = p.t
    path = f"/t/{urllib.parse.quote(trip.code)}"
    cover = next((x for x in products if x.image_key), None)
    closes = t.date(trip.closes_on)
    description = t(
        TRIP_DESCRIPTION,
        destination=trip.destination,
        name=jastiper_name,
        closes=closes,
    )
    by = (
        f'<a href="{e(p.href(f"/j/{jastiper_slug}"))}">{e(jastiper_name)}</a>'
        if jastiper_slug
        else e(jastiper_name)
    )
    if is_open:
        action = (
            f'<a class="join" href="{e(join_link)}">{e(t(JOIN_BUTTON))}</a>'
            f'<div class="qr"><img src="{e(path)}/qr.png" alt="{e(t(QR_ALT))}" '
            f'width="136" height="136"><p>{e(t(QR_CAPTION))}<br>'
            f"<small>{e(t(TRIP_CODE))}: <b>{e(trip.code)}</b></small></p></div>"
        )
        if short_slug:
            action += _share(p, short_slug)
    else:
        closed = t(TRIP_CLOSED)
        action = f'<p class="meta">{e(closed)}</p>'
    grid = "".join(_product(p, trip, product) for product in products)
    if not grid:
        grid_html = f'<p class="meta">{e(t(NO_PRODUCTS))}</p>'
    else:
        grid_html = f'<ul class="grid">{grid}</ul>'
    clock = countdown(p, trip.closes_on, is_open)
    body = f"""<header>
<h1>{e(trip.title)}</h1>
<p class="meta">{e(t(DESTINATION))}: {e(trip.destination)}</p>
<p class="meta">{e(t(JASTIPER))}: {by}</p>
<p class="meta">{e(t(CLOSES_ON))}: {e(closes)} {clock}</p>
</header>
{action}
<h2>{e(t(CATALOGUE))}</h2>
{grid_html}"""
    if is_open and products:  # the join button stays in reach however long the catalogue
        body += (
            f'<div class="bar"><a class="join" href="{e(join_link)}">{e(t(JOIN_BUTTON))}</a></div>'
        )

    meta = _meta(
        p,
        title=trip.title,
        description=description,
        path=path,
        image=cover,
        card=f"{path}/card.png?v={trip_card_version(trip, products)}",
    )
    return _document(
        p, title=f"{trip.title} — Jastipin", meta=meta, body=body, path=path, script=True
    )


def trip_card_version(trip: Trip, products: list[Product]) -> str:
    """Changes when what the share card shows changes (crawlers cache by URL)."""
    import hashlib

    shown = [(x.id, x.name, x.price, x.image_key) for x in products[:3]]
    raw = repr((trip.title, trip.destination, trip.closes_on, shown)).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


def _trip_card(p: Page, trip: Trip, cover: Product | None, *, is_open: bool) -> str:
    image = (
        f'<img src="{e(photo_path(cover, "thumb"))}" alt="" loading="lazy" '
        'width="104" height="104">'
        if cover is not None
        else '<div class="nophoto"></div>'
    )
    return (
        f'<li><a class="trip" href="{e(p.href(f"/t/{urllib.parse.quote(trip.code)}"))}">'
        f'{image}<div class="body"><b>{e(trip.title)}</b>'
        f'<p class="meta">{e(trip.destination)}<br>{e(p.t(CLOSES_ON))}: '
        f"{e(p.t.date(trip.closes_on))}</p>"
        f"{countdown(p, trip.closes_on, is_open)}</div></a></li>"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """What a jastiper set with ``/profile``: bio, links, the avatar's address."""

    bio: str | None = None
    links: list[str] = dataclasses.field(default_factory=list)
    avatar: str | None = None


def _link_label(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    return f"{host}{parts.path.rstrip('/')}" if parts.path.strip("/") else host


def _profile(p: Page, title: str, profile: Profile) -> str:
    avatar = (
        f'<img class="avatar" src="{e(profile.avatar)}" alt="{e(p.t(AVATAR_ALT))}" '
        'width="96" height="96">'
        if profile.avatar
        else ""
    )
    bio = f'<p class="bio">{e(profile.bio)}</p>' if profile.bio else ""
    links = (
        '<ul class="links">'
        + "".join(
            f'<li><a href="{e(url)}" rel="nofollow noopener ugc">{e(_link_label(url))}</a></li>'
            for url in profile.links
            if url.startswith(("https://", "http://"))
        )
        + "</ul>"
        if profile.links
        else ""
    )
    return f'<header class="profile">{avatar}<h1>{e(title)}</h1></header>{bio}{links}'


def jastiper_page(
    p: Page,
    *,
    name: str,
    slug: str,
    open_trips: Iterable[Trip],
    past_trips: Iterable[Trip],
    covers: dict[int, Product],
    profile: Profile | None = None,
) -> str:
    """A jastiper's link-in-bio: open trips with covers and closing dates, past trips."""
    t = p.t
    path = f"/j/{slug}"
    open_list = list(open_trips)
    past_list = list(past_trips)
    open_html = (
        '<ul class="trips">'
        + "".join(_trip_card(p, x, covers.get(x.id), is_open=True) for x in open_list)
        + "</ul>"
        if open_list
        else f'<p class="meta">{e(t(NO_OPEN_TRIPS))}</p>'
    )
    past_html = (
        f'<h2>{e(t(PAST_TRIPS))}</h2><ul class="trips past">'
        + "".join(_trip_card(p, x, covers.get(x.id), is_open=False) for x in past_list)
        + "</ul>"
        if past_list
        else ""
    )
    title = t(JASTIPER_TITLE, name=name)
    description = (profile.bio if profile and profile.bio else None) or t(
        JASTIPER_DESCRIPTION, count=len(open_list)
    )
    cover = next((covers[x.id] for x in open_list if x.id in covers), None)
    body = f"""{_profile(p, title, profile or Profile())}
<h2>{e(t(OPEN_TRIPS))}</h2>
{open_html}
{past_html}"""
    meta = _meta(p, title=title, description=description, path=path, image=cover)
    return _document(p, title=f"{title} — Jastipin", meta=meta, body=body, path=path)


def product_page(
    p: Page,
    trip: Trip,
    product: Product,
    *,
    jastiper_name: str,
    order_link: str,
    is_open: bool,
) -> str:
    """One product at its own address: big photo, price, stock left, description, and
    the button that opens the chat on it (``JOIN <CODE> <n>``)."""
    t = p.t
    path = product_path(trip, product)
    trip_path = f"/t/{urllib.parse.quote(trip.code)}"
    sold_out = product.stock == 0
    if product.image_key:
        image = (
            f'<img src="{e(photo_path(product, "full"))}" '
            f'srcset="{e(photo_path(product, "thumb"))} 400w, '
            f'{e(photo_path(product, "full"))} 1080w" sizes="(max-width: 40rem) 100vw, 40rem" '
            f'alt="{e(product.name)}" width="1080" height="1080">'
        )
    else:
        image = '<div class="nophoto"></div>'
    badge = f'<span class="badge">{e(t(SOLD_OUT))}</span>' if sold_out else ""
    desc = f'<p class="desc">{e(product.description)}</p>' if product.description else ""
    if is_open:
        label = t(WAITLIST_BUTTON) if sold_out else t(ORDER_BUTTON)
        action = f'<div class="bar"><a class="join" href="{e(order_link)}">{e(label)}</a></div>'
    else:
        action = f'<p class="meta">{e(t(TRIP_CLOSED))}</p>'
    back = t(BACK_TO_TRIP, title=trip.title)
    body = f"""<a class="back" href="{e(p.href(trip_path))}">{e(back)}</a>
<article class="product{" soldout" if sold_out else ""}">{image}<div class="body">
<h1>{e(product.name)}</h1>
<span class="price">{e(t.money(product.price))}</span>{badge}
{_stock(p, product.stock)}
{desc}
<p class="meta">{e(t(JASTIPER))}: {e(jastiper_name)} · {countdown(p, trip.closes_on, is_open)}</p>
</div></article>
{action}"""
    description = t(
        PRODUCT_DESCRIPTION,
        price=t.money(product.price),
        destination=trip.destination,
        name=jastiper_name,
    )
    meta = _meta(
        p,
        title=product.name,
        description=description,
        path=path,
        image=product if product.image_key else None,
    )
    title = f"{product.name} — {trip.title}"
    return _document(p, title=title, meta=meta, body=body, path=path)


def not_found_page(p: Page, message: str, path: str) -> str:
    body = f"<header><h1>{e(p.t(NOT_FOUND))}</h1></header>" + (f'<p class="meta">{e(message)}</p>')
    return _document(p, title="Jastipin", meta="", body=body, path=path)
