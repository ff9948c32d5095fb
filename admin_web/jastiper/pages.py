"""The pages of a jastiper's own panel (``/j-web/``): their orders, one order, proofs
awaiting review (approve / reject through ``services.payments`` exactly as the buttons
in chat, so the buyer is told the same way), the recap download (the spreadsheet
``/recap`` sends in chat) and their broadcasts with progress.

Every read goes through ``services.jastiper_web`` with the session's jastiper in the
query: another jastiper's order, proof, trip or broadcast answers 404 exactly like
one that does not exist, so guessing ids confirms nothing.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.keys import CIPHER, DB, MEDIA
from admin_web.shell import orders as shell_orders
from admin_web.shell import proofs as shell_proofs
from admin_web.shell import security
from admin_web.shell.render import buyer_name, outbox_notify, render, translator
from locales import JAKARTA, _
from services import accounts, broadcasts, payments, recap, reconcile, statements
from services import jastiper_web as service
from services import orders as orders_service
from storage.models import Jastiper, OrderStatus, User, utcnow

JASTIPER: web.RequestKey[Jastiper] = web.RequestKey("jastiper", Jastiper)
CODE = r"{code:[A-Za-z0-9-]{1,20}}"
ID = r"{proof_id:\d{1,12}}"


def me(request: web.Request) -> Jastiper:
    jastiper = request.get(JASTIPER)
    if jastiper is None:  # the gate lets no page run without one
        raise web.HTTPUnauthorized()
    return jastiper


def not_found() -> web.HTTPNotFound:
    """The same answer for someone else's object and one that does not exist."""
    return web.HTTPNotFound(text="Not found")


def proof_link(request: web.Request, proof_id: int) -> str:
    what = f"jweb-proof:{proof_id}"
    return f"/j-web/proofs/{proof_id}/image?{security.signed_query(request, what)}"


def _labels(request: web.Request) -> dict[str, Any]:
    t = translator(request)
    return {
        "status_label": lambda s: t(orders_service.status_label(s)),
        "proof_label": lambda s: t(payments.PROOF_TEXT.get(s) or s),
        "broadcast_status": lambda s: t(broadcasts.STATE_TEXT.get(s) or _("Lainnya")),
    }


async def orders_page(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/``: the jastiper's orders, all trips or ``?trip=CODE``."""
    jastiper = me(request)
    t = translator(request)
    trip_code = request.query.get("trip", "").strip().upper()[:20]
    status = request.query.get("status", "")
    if status not in {s.value for s in OrderStatus}:
        status = ""
    async with request.config_dict[DB].read() as session:
        trips = await service.trips(session, jastiper)
        chosen = next((x for x in trips if x.code == trip_code), None)
        rows = await service.orders(session, jastiper, chosen, status or None)
        waiting = len(await service.proofs_awaiting(session, jastiper))
    return render(
        request,
        "jweb_orders.html",
        {
            **_labels(request),
            "trips": trips,
            "chosen": chosen,
            "status": status,
            "statuses": [(s.value, t(orders_service.status_label(s))) for s in OrderStatus],
            "rows": [(o, tr, buyer_name(u)) for o, tr, u in rows],
            "waiting": waiting,
        },
    )


async def order_page(request: web.Request, *, error: str = "") -> web.StreamResponse:
    """``GET /j-web/orders/<code>``: items, totals, address and proofs (404 if not theirs)."""
    jastiper = me(request)
    async with request.config_dict[DB].read() as session:
        found = await service.order(session, jastiper, request.match_info["code"])
        if found is None:
            raise not_found()
        order, trip, buyer = found
        proofs = await service.order_proofs(session, jastiper, order)
        reused = await payments.reused(session, proofs)
    return render(
        request,
        "jweb_order.html",
        {
            **_labels(request),
            **shell_orders.order_values(
                request, order, trip, buyer, proofs, proof_link, reused=reused, error=error
            ),
        },
        status=409 if error else 200,
    )


async def proofs_page(
    request: web.Request, *, error: str = "", summary: str = ""
) -> web.StreamResponse:
    """``GET /j-web/proofs``: the proofs of their orders awaiting review, and the form
    that uploads a bank statement (its summary shown here after the upload)."""
    jastiper = me(request)
    async with request.config_dict[DB].read() as session:
        rows = await service.proofs_awaiting(session, jastiper)
        reused = await payments.reused(session, [r[0] for r in rows])
    return render(
        request,
        "jweb_proofs.html",
        {
            **_labels(request),
            "rows": [(p, o, tr, buyer_name(u), proof_link(request, p.id)) for p, o, tr, u in rows],
            "reasons": shell_proofs.reasons(translator(request)),
            "error": error,
            "summary": summary,
            "reused": reused,
        },
        status=409 if error else 200,
    )


async def statement_upload(request: web.Request) -> web.StreamResponse:
    """``POST /j-web/statement``: a bank statement export confirms the payments its
    credits pay, exactly as the same file captioned /mutasi in chat (``services.reconcile``)."""
    jastiper = me(request)
    t = translator(request)
    form = await request.post()
    field = form.get("statement")
    if not isinstance(field, web.FileField):
        return await proofs_page(request, error=t(_("Pilih file mutasi (CSV atau XLSX) dulu.")))
    data = field.file.read(statements.MAX_BYTES + 1)
    today = utcnow().astimezone(ZoneInfo(JAKARTA)).date()
    try:
        statement = await statements.read(data, today)
    except statements.StatementRejected as exc:
        return await proofs_page(request, error=t(reconcile.WEB_REFUSALS[exc.reason]))
    media = request.config_dict[MEDIA]
    async with request.config_dict[DB].transaction() as session:
        outcome = await reconcile.apply(session, jastiper, statement, media, utcnow())
    outbox_notify(request)
    return await proofs_page(request, summary=reconcile.summary(t, outcome, chat=False))


async def proof_image(request: web.Request) -> web.StreamResponse:
    """A proof's image: a signed link that expires, and a proof of their own."""
    jastiper = me(request)
    proof_id = int(request.match_info["proof_id"])
    if not security.link_valid(request, f"jweb-proof:{proof_id}"):
        raise web.HTTPForbidden(text="This link has expired or is not valid; reload the page.")
    async with request.config_dict[DB].read() as session:
        proof = await service.proof(session, jastiper, proof_id)
    return await shell_proofs.proof_file(request, proof)


async def _as_owner(
    request: web.Request, session: AsyncSession
) -> tuple[User | None, dict[str, int]]:
    """The jastiper reviews as their own chat buttons do: their user is the reviewer
    (only their trips' proofs) and the audit log's actor, so the buyer is told the same."""
    owner = await accounts.owner(session, me(request).id)
    if owner is None:
        raise not_found()
    return owner, {"actor_user_id": owner.id}


approve, reject = shell_proofs.settlers(proofs_page, _as_owner)


async def recap_download(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/trips/<code>/recap.xlsx|csv``: the spreadsheet ``/recap`` sends in
    chat, as a download."""
    jastiper = me(request)
    t = translator(request)
    ext = request.match_info["ext"]
    async with request.config_dict[DB].read() as session:
        trip = await service.trip(session, jastiper, request.match_info["code"])
        if trip is None:
            raise not_found()
        rows = await recap.rows(session, trip, request.config_dict[CIPHER], t)
    header = [t(h) for h in recap.HEADER]
    if ext == "csv":
        data, _mime, _ext = recap.as_csv(header, rows)
        mime = "text/csv"
    else:
        data, mime, _ext = recap.xlsx(header, rows, trip.code)
    async with request.config_dict[DB].transaction() as session:
        recap.record_sent(session, trip, actor_user_id=jastiper.user_id, ext=ext)
    return web.Response(
        body=data,
        content_type=mime,
        headers={"Content-Disposition": f'attachment; filename="rekap-{trip.code}.{ext}"'},
    )


async def broadcasts_page(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/broadcasts``: their broadcasts with delivery progress and cost."""
    jastiper = me(request)
    async with request.config_dict[DB].read() as session:
        rows = await broadcasts.latest(session, jastiper, limit=30)
    return _broadcasts(request, rows)


def _broadcasts(request: web.Request, rows: list[broadcasts.Progress]) -> web.Response:
    """Each broadcast with its failure reasons in words (as ``/broadcast status`` says)."""
    t = translator(request)

    def words(code: int | None) -> str:
        text = broadcasts.FAILURE_TEXT.get(code) if code is not None else None
        return t(text) if text else t(_("kode {code}"), code=code or "?")

    listed = [(p, [(n, words(code)) for code, n in p.reasons]) for p in rows]
    return render(request, "jweb_broadcasts.html", {**_labels(request), "rows": listed})


async def broadcast_page(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/broadcasts/<id>``: one broadcast (404 if not theirs)."""
    jastiper = me(request)
    async with request.config_dict[DB].read() as session:
        progress = await service.broadcast(
            session, jastiper, int(request.match_info["broadcast_id"])
        )
    if progress is None:
        raise not_found()
    return _broadcasts(request, [progress])


async def orders_index(request: web.Request) -> web.StreamResponse:
    return await orders_page(request)


async def order_index(request: web.Request) -> web.StreamResponse:
    return await order_page(request)


async def proofs_index(request: web.Request) -> web.StreamResponse:
    return await proofs_page(request)


def setup(app: web.Application) -> None:
    app.router.add_get("/", orders_index, name="jweb.orders")
    app.router.add_get(f"/orders/{CODE}", order_index, name="jweb.order")
    app.router.add_get("/proofs", proofs_index, name="jweb.proofs")
    app.router.add_get(f"/proofs/{ID}/image", proof_image, name="jweb.proof_image")
    app.router.add_post(f"/proofs/{ID}/approve", approve, name="jweb.proof_approve")
    app.router.add_post(f"/proofs/{ID}/reject", reject, name="jweb.proof_reject")
    app.router.add_post("/statement", statement_upload, name="jweb.statement")
    app.router.add_get(f"/trips/{CODE}/recap.{{ext:csv|xlsx}}", recap_download, name="jweb.recap")
    app.router.add_get("/broadcasts", broadcasts_page, name="jweb.broadcasts")
    app.router.add_get(
        r"/broadcasts/{broadcast_id:\d{1,12}}", broadcast_page, name="jweb.broadcast"
    )
