"""``GET /t/<code>`` (public trip page with a "Join on WhatsApp" button) and ``GET /s/<x>``."""

from __future__ import annotations

import html

from aiohttp import web

from admin_web.keys import DB, SETTINGS
from locales import format_date, format_rupiah
from services.trips import join_link
from storage.models import TripStatus
from storage.repo import links
from storage.repo import trips as trips_repo


async def trip_page(request: web.Request) -> web.Response:
    code = request.match_info["code"].upper()
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        try:
            trip = await trips_repo.get_trip_by_code(session, code)
        except trips_repo.TripNotFound:
            raise web.HTTPNotFound(text="Trip not found") from None
        products = await trips_repo.visible_products(session, trip.id)
    esc = html.escape
    rows = "".join(
        f"<li>{esc(p.name)} — {esc(format_rupiah(p.price))}"
        f"{' (habis)' if p.stock == 0 else ''}</li>"
        for p in products
    )
    is_open = trip.status == TripStatus.OPEN.value
    button = (
        f'<a class="join" href="{esc(join_link(settings.wa_business_number, trip.code))}">'
        "Gabung lewat WhatsApp / Join on WhatsApp</a>"
        if is_open
        else "<p>Trip ini sudah ditutup. / This trip is closed.</p>"
    )
    body = f"""<!doctype html>
<html lang="id"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(trip.title)} — Jastipin</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
.join{{display:inline-block;background:#25d366;color:#fff;padding:.8rem 1.2rem;
border-radius:.5rem;text-decoration:none;font-weight:600}}</style></head>
<body><h1>{esc(trip.title)}</h1>
<p>Tujuan / Destination: {esc(trip.destination)}<br>
Ditutup / Closes: {esc(format_date(trip.closes_on))}<br>
Jastiper: {esc(trip.jastiper.name)}</p>
{button}
<h2>Katalog / Catalogue</h2><ul>{rows}</ul>
<p>Kode trip / Trip code: <b>{esc(trip.code)}</b></p>
</body></html>"""
    return web.Response(text=body, content_type="text/html")


async def short_redirect(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    async with request.app[DB].transaction() as session:
        target = await links.follow(session, slug)
    if target is None:
        raise web.HTTPNotFound(text="Link not found")
    raise web.HTTPFound(target)


def setup(app: web.Application) -> None:
    app.router.add_get("/t/{code}", trip_page)
    app.router.add_get("/s/{slug}", short_redirect)
