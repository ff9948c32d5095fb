"""``GET /admin/``: the business on one screen — open trips, orders by status, money in
and still to come, orders and paid WhatsApp messages per day, and the latest orders and
proofs awaiting review (each one click from here)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel.charts import bar_chart, last_days
from admin_web.panel.orders import _start_of
from admin_web.shell.render import render, translator
from locales import JAKARTA, _
from services import orders as orders_service
from services import panel as panel_service
from storage.models import OrderStatus, utcnow

DAYS = 14
S = OrderStatus


async def dashboard(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    # Jakarta days, like every other date in the panel
    today = utcnow().astimezone(ZoneInfo(JAKARTA)).date()
    since = _start_of(today - dt.timedelta(days=DAYS - 1))
    async with request.config_dict[DB].read() as session:
        board = await panel_service.dashboard(session, since)
    trips, money, paid_msgs = board.trips, board.money, board.paid_messages
    days = last_days(today, DAYS)
    return render(
        request,
        "dashboard.html",
        {
            "trips": trips,
            "participants": sum(n for _trip, n, _orders in trips),
            # only the statuses some order is in (no rows of zeros)
            "statuses": [
                (t(orders_service.status_label(s)), *money.by_status[s.value])
                for s in OrderStatus
                if s.value in money.by_status
            ],
            # the same amounts as the order rows (services/amounts.py), refunds taken off
            "money": money,
            "orders_chart": bar_chart(
                days, board.orders_per_day, title="{day}: {value} " + t(_("pesanan"))
            ),
            "messages_chart": bar_chart(
                days,
                [(d, n) for d, n, _cost in paid_msgs],
                title="{day}: {value} " + t(_("pesan berbayar")),
            ),
            "cost_chart": bar_chart(
                days, [(d, c) for d, _n, c in paid_msgs], title="{day}: Rp {value}"
            ),
            "message_cost": sum(c for _d, _n, c in paid_msgs),
            "latest": board.latest,
            "proofs": board.proofs,
            "status_label": lambda s: t(orders_service.status_label(s)),
        },
        active="admin.dashboard",
    )


def setup(panel: web.Application) -> None:
    panel.router.add_get("/", dashboard, name="admin.dashboard")
