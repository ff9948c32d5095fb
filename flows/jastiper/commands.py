"""The jastiper's slash commands, one table: each command's names, what it runs, the
/help group it is listed in and its lines there. ``/help`` is generated from the table:
a short list of five groups (trips, products, orders, money, broadcasts); a tap on a
group gives its commands with examples. A command added to :data:`TABLE` is routed and
listed in its group; an alias (a second name) is routed only."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from flows.base import Ctx
from flows.jastiper import (
    broadcasts,
    money,
    orders,
    products,
    profile,
    qris,
    questions,
    trips,
    web,
)
from flows.jastiper.machine import WIZARD_KEYS, flow
from locales import _, pgettext
from services import replies
from services.payloads import JastiperTap
from storage.models import Jastiper

Run = Callable[[Ctx, Jastiper, list[str]], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Command:
    """A slash command.

    Args:
        names: ``/name`` first, then its aliases (routed, not listed).
        run: What answers it, given the jastiper and the words after the name.
        group: The /help group it is listed in (a key of :data:`GROUPS`); None: not listed.
        lines: Its lines in the group's text (catalogue ids); two commands may share one
            line (``/close DEMO · /open DEMO``), which is then listed once.
    """

    names: tuple[str, ...]
    run: Run
    group: str | None = None
    lines: tuple[str, ...] = ()


# key: (section title, the group's heading in its text)
GROUPS: dict[str, tuple[str, str]] = {
    "trips": (pgettext("plural", "Trip"), _("*Trip*")),
    "products": (pgettext("plural", "Produk"), _("*Produk*")),
    "orders": (pgettext("plural", "Pesanan"), _("*Pesanan*")),
    "money": (_("Uang"), _("*Uang*")),
    "broadcasts": (pgettext("plural", "Broadcast"), _("*Broadcast & pertanyaan*")),
}


async def cmd_help(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """The commands in five groups, each group's examples one tap away."""
    show_help(ctx)


async def cmd_cancel(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Leaves any wizard."""
    ctx.forget(*WIZARD_KEYS)
    ctx.enter(flow)
    ctx.say(_("Oke, dibatalkan."))


# lines two or three commands share (listed once)
CLOSE_OPEN = _("/close DEMO · /open DEMO — tutup / buka pesanan")
CHANGE_PRODUCT = _("/stock 3 10 · /price 3 90000 · /hide 3 — ubah produk nomor 3")
TELL_BUYER = _("/bought JP-ABCDE · /ship JP-ABCDE RESI123 · /done JP-ABCDE — kabari pembeli")

TABLE: tuple[Command, ...] = (
    Command(("/help", "/bantuan"), cmd_help),
    # trips
    Command(
        ("/trip",),
        trips.cmd_trip,
        "trips",
        (
            _("/trip new — buka trip baru (wizard)"),
            _("/trip DEMO — detail dan pengaturan satu trip"),
        ),
    ),
    Command(("/trips",), trips.cmd_trips, "trips", (_("/trips — semua trip-mu"),)),
    Command(("/close",), trips.cmd_close, "trips", (CLOSE_OPEN,)),
    Command(("/open",), trips.cmd_open, "trips", (CLOSE_OPEN,)),
    Command(
        ("/summary",),
        trips.cmd_summary,
        "trips",
        (_("/summary DEMO harian|mingguan|off — ringkasan otomatis ke pembeli"),),
    ),
    Command(("/web",), web.cmd_web, "trips", (_("/web — link sekali pakai ke panel web-mu"),)),
    Command(
        ("/profile",),
        profile.cmd_profile,
        "trips",
        (_("/profile — bio, link dan foto di halaman publikmu"),),
    ),
    Command(
        ("/cancel", "/batal"),
        cmd_cancel,
        "trips",
        (_("MENU — menu jastiper · /cancel — batalkan wizard"),),
    ),
    # products
    Command(
        ("/add",),
        products.cmd_add,
        "products",
        (
            _("Foto + caption /add Kit Kat Matcha | 85rb | 20 — tambah produk"),
            _("/add — tambah produk langkah demi langkah"),
        ),
    ),
    Command(
        ("/products",),
        products.cmd_products,
        "products",
        (_("/products DEMO — daftar produk bernomor"),),
    ),
    Command(("/stock",), products.cmd_stock, "products", (CHANGE_PRODUCT,)),
    Command(("/price",), products.cmd_price, "products", (CHANGE_PRODUCT,)),
    Command(("/hide",), products.cmd_hide, "products", (CHANGE_PRODUCT,)),
    # orders
    Command(
        ("/orders",),
        orders.cmd_orders,
        "orders",
        (_("/orders DEMO [belum bayar|bukti|lunas|dikirim] — daftar pesanan"),),
    ),
    Command(("/order",), orders.cmd_order, "orders", (_("/order JP-ABCDE — detail pesanan"),)),
    Command(
        ("/paid",),
        orders.cmd_paid,
        "orders",
        (_("/paid JP-ABCDE — tandai lunas (bayar di luar bot)"),),
    ),
    Command(("/bought",), orders.cmd_bought, "orders", (TELL_BUYER,)),
    Command(("/ship",), orders.cmd_ship, "orders", (TELL_BUYER,)),
    Command(("/done",), orders.cmd_done, "orders", (TELL_BUYER,)),
    Command(
        ("/recap",),
        orders.cmd_recap,
        "orders",
        (_("/recap DEMO [csv] — rekap pesanan (XLSX / CSV)"),),
    ),
    # money
    Command(
        ("/ongkir", "/shipping"),
        money.cmd_ongkir,
        "money",
        (
            _(
                "/ongkir JP-ABCDE 25000 · /ongkir DEMO 25000 — ongkir satu pesanan / semua "
                "yang belum"
            ),
        ),
    ),
    Command(
        ("/refund",),
        money.cmd_refund,
        "money",
        (_("/refund JP-ABCDE 1 [jumlah] [alasan] — barang nomor 1 tidak didapat"),),
    ),
    Command(
        ("/refunds",),
        money.cmd_refunds,
        "money",
        (_("/refunds — refund yang belum dikembalikan, dengan rekening pembeli"),),
    ),
    Command(
        ("/refunded",),
        money.cmd_refunded,
        "money",
        (_("/refunded JP-ABCDE — refund sudah dikembalikan (atau foto bukti + caption itu)"),),
    ),
    Command(
        ("/mutasi", "/statement"),
        money.cmd_mutasi,
        "money",
        (_("File mutasi (CSV/XLSX) + caption /mutasi — cocokkan transfer masuk"),),
    ),
    Command(
        ("/qris",),
        qris.cmd_qris,
        "money",
        (
            _("Foto QRIS + caption /qris — QRIS dengan nominal tepat di setiap instruksi bayar"),
            _("/qris rekening BCA 1234567890 — rekening pencairan QRIS, untuk /mutasi"),
        ),
    ),
    Command(
        ("/balance",),
        orders.cmd_balance,
        "money",
        (_("/balance DEMO — tagih pelunasan trip DP"),),
    ),
    # broadcasts and questions
    Command(
        ("/broadcast",),
        broadcasts.cmd_broadcast,
        "broadcasts",
        (
            _("/broadcast DEMO pesan — perkiraan biaya, lalu kirim"),
            _("/broadcast status — broadcast terakhir dan hasil kirimnya"),
        ),
    ),
    Command(
        ("/reply",),
        questions.cmd_reply,
        "broadcasts",
        (_("/reply Q-AB12 jawaban — jawab pertanyaan pembeli"),),
    ),
)

# what the router looks a typed /name up in: every name and alias
COMMANDS: dict[str, Run] = {name: command.run for command in TABLE for name in command.names}


def _groups() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each group's listed names and its lines (a shared line once), in table order."""
    names: dict[str, list[str]] = {key: [] for key in GROUPS}
    lines: dict[str, dict[str, None]] = {key: {} for key in GROUPS}
    for command in TABLE:
        if command.group is not None:
            names[command.group].append(command.names[0])
            lines[command.group].update(dict.fromkeys(command.lines))
    return {key: (tuple(names[key]), tuple(lines[key])) for key in GROUPS}


LISTED = _groups()  # built once, from TABLE


def show_help(ctx: Ctx) -> None:
    """The five groups as a list; the common commands named in the body."""
    body = ctx.t(
        _(
            "*Perintah jastiper*\n"
            "Yang paling sering: /trip new · foto + /add · /orders DEMO · /ship JP-ABCDE "
            "RESI · MENU\n"
            "Ketuk satu kelompok untuk semua perintahnya dengan contoh."
        )
    )
    sections = [
        (
            ctx.t(title),
            [(ctx.t(title), ", ".join(LISTED[key][0])[:72], JastiperTap("help", key))],
        )
        for key, (title, _heading) in GROUPS.items()
    ]
    ctx.reply(replies.list_sections(body, ctx.t(_("Kelompok")), sections))


def show_group(ctx: Ctx, key: str) -> None:
    """One group's commands, with examples."""
    group = GROUPS.get(key)
    if group is None:
        show_help(ctx)
        return
    ctx.reply(
        replies.text("\n".join([ctx.t(group[1]), *(ctx.t(line) for line in LISTED[key][1])]))
    )
