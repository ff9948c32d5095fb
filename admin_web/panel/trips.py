"""``/admin/trips``: every trip, and one trip with its products (stock, price, hidden),
participants (name, consent, STOP) and orders; close or reopen it through
``services.trips.set_status`` (the function ``/close`` and ``/open`` call in chat, so
buyers are told exactly as from chat — nothing — and the jastiper is told an admin did
it); change a product's stock, price or visibility through ``services.products``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel.render import current_admin
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import buyer_name, outbox_notify, redirect, render, translator
from locales import _, pgettext
from services import orders as orders_service
from services import panel as panel_service
from services import products as products_service
from services import trips as trips_service
from storage.models import Trip, TripStatus

ORDERS_SHOWN = 200
TRIP_STATUSES = {
    TripStatus.OPEN.value: _("Buka"),
    TripStatus.CLOSED.value: pgettext("trip status", "Ditutup"),
    TripStatus.ARCHIVED.value: _("Diarsipkan"),
}
# what a trip page says after its forms (``?done=``)
DONE = {
    "trip_closed": _("Trip ditutup. Jastiper-nya sudah dikabari."),
    "trip_open": _("Trip dibuka lagi. Jastiper-nya sudah dikabari."),
    "product_saved": _("Produk disimpan."),
}


def flash_of(request: web.Request, done: dict[str, str]) -> dict[str, str]:
    """The page's own ``?done=`` message (the shared ``render.FLASH`` stays the core's):
    a context entry that overrides the base one, or nothing."""
    key = request.query.get("done", "")
    return {"flash": translator(request)(done[key])} if key in done else {}


def _trip_status(status: str) -> str:
    return TRIP_STATUSES.get(status, status)


async def trip_list(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    status = request.query.get("status", "")
    async with request.config_dict[DB].read() as session:
        rows = await panel_service.trips_overview(
            session, status=status if status in TRIP_STATUSES else None
        )
    return render(
        request,
        "trips.html",
        {
            "rows": rows,
            "status": status,
            "statuses": [(k, t(v)) for k, v in TRIP_STATUSES.items()],
            "status_label": lambda s: t(_trip_status(s)),
        },
        active="admin.trips",
    )


async def _trip(request: web.Request, session: Any, *, lock: bool = False) -> Trip:
    code = request.match_info["code"][:16]
    trip = await panel_service.trip(session, code, lock=lock)
    if trip is None:
        raise web.HTTPNotFound(text="Trip not found")
    return trip


async def trip_detail(request: web.Request, *, error: str = "") -> web.StreamResponse:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        trip = await _trip(request, session)
        products = await products_service.of_trip(session, trip)
        participants = await panel_service.participants(session, trip)
        orders = await panel_service.find_orders(session, trip_id=trip.id, limit=ORDERS_SHOWN)
        stats = await trips_service.stats(session, trip)
    return render(
        request,
        "trip.html",
        {
            "trip": trip,
            "stats": stats,
            "products": products,
            "participants": [
                {
                    "name": buyer_name(user),
                    "joined": p.created_at,
                    "consent": p.consent_at,
                    "unsubscribed": p.unsubscribed_at,
                    "stopped": user.opted_out_at,
                    "marketing_off": user.marketing_opted_out_at,
                }
                for p, user in participants
            ],
            "orders": [(o, buyer_name(u)) for o, _trip, u in orders],
            "orders_cut": len(orders) >= ORDERS_SHOWN,
            "error": error,
            "status_label": lambda s: t(_trip_status(s)),
            "order_status": lambda s: t(orders_service.status_label(s)),
            **flash_of(request, DONE),
        },
        active="admin.trips",
        status=409 if error else 200,
    )


async def trip_page(request: web.Request) -> web.StreamResponse:
    return await trip_detail(request)


async def trip_status(request: web.Request) -> web.StreamResponse:
    """``POST /admin/trips/<CODE>/status``: ``to`` is ``open`` or ``closed``."""
    t = translator(request)
    admin = current_admin(request)
    form = await request.post()
    to = str(form.get("to", ""))
    if to not in (TripStatus.OPEN.value, TripStatus.CLOSED.value):
        return await trip_detail(request, error=t(_("Pilih tutup atau buka.")))
    if to == TripStatus.CLOSED.value and form.get("confirm") != "1":  # destructive: asked
        return await trip_detail(
            request, error=t(_("Centang konfirmasinya dulu untuk menutup trip ini."))
        )
    async with request.config_dict[DB].transaction() as session:
        trip = await _trip(request, session, lock=True)
        if trip.status == to:  # a second click, or another admin got there first
            return redirect(f"/admin/trips/{trip.code}")
        await trips_service.set_status(session, trip, to, actor_admin_id=admin.id)
        code = trip.code
    outbox_notify(request)
    return redirect(f"/admin/trips/{code}?done=trip_{to}")


async def product_edit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/trips/<CODE>/products/<id>``: stock (empty: unlimited), price (as
    a jastiper types it) and hidden, checked by the same functions as in chat."""
    admin = current_admin(request)
    form = await request.post()
    try:
        product_id = int(request.match_info["product_id"])
    except ValueError:
        raise web.HTTPNotFound(text="Product not found") from None
    raw_price = str(form.get("price", "")).strip()[:30]
    raw_stock = str(form.get("stock", "")).strip()[:10]
    hidden = form.get("hidden") == "1"
    refusal_shows(request, lambda error: trip_detail(request, error=error))
    price = products_service.check_price(raw_price)
    stock = products_service.check_stock(raw_stock)
    async with request.config_dict[DB].transaction() as session:
        trip = await _trip(request, session)
        product = await panel_service.product_of_trip(session, trip, product_id)
        if product is None:
            raise web.HTTPNotFound(text="Product not found")
        if product.price != price:
            await products_service.set_price(session, product, price, actor_admin_id=admin.id)
        if product.stock != stock:
            await products_service.set_stock(session, product, stock, actor_admin_id=admin.id)
        if product.hidden != hidden:
            await products_service.set_hidden(session, product, hidden, actor_admin_id=admin.id)
        code = trip.code
    return redirect(f"/admin/trips/{code}?done=product_saved#product-{product_id}")


def setup(panel: web.Application) -> None:
    panel.router.add_get("/trips", trip_list, name="admin.trips")
    panel.router.add_get("/trips/{code}", trip_page, name="admin.trip")
    panel.router.add_post("/trips/{code}/status", trip_status, name="admin.trip_status")
    panel.router.add_post(
        "/trips/{code}/products/{product_id}", product_edit, name="admin.product_edit"
    )
