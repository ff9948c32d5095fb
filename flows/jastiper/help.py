"""A jastiper's help: a short list in five groups (trips, products, orders, money,
broadcasts); a tap on a group gives its commands with examples. Every command is in
exactly one group, so each is one tap away."""

from __future__ import annotations

from flows.base import Ctx
from locales import _, pgettext
from services import replies
from services.payloads import JastiperTap

GROUPS: dict[str, tuple[str, str, str]] = {
    # key: (section title, row description, the group's commands)
    "trips": (
        pgettext("plural", "Trip"),
        _("/trip new, /trips, /close, /open, /summary, /profile"),
        _(
            "*Trip*\n"
            "/trip new — buka trip baru (wizard)\n"
            "/trips — semua trip-mu\n"
            "/trip DEMO — detail dan pengaturan satu trip\n"
            "/close DEMO · /open DEMO — tutup / buka pesanan\n"
            "/summary DEMO harian|mingguan|off — ringkasan otomatis ke pembeli\n"
            "/web — link sekali pakai ke panel web-mu\n"
            "/profile — bio, link dan foto di halaman publikmu\n"
            "MENU — menu jastiper · /cancel — batalkan wizard"
        ),
    ),
    "products": (
        pgettext("plural", "Produk"),
        _("/add, /products, /stock, /price, /hide"),
        _(
            "*Produk*\n"
            "Foto + caption /add Kit Kat Matcha | 85rb | 20 — tambah produk\n"
            "/add — tambah produk langkah demi langkah\n"
            "/products DEMO — daftar produk bernomor\n"
            "/stock 3 10 · /price 3 90000 · /hide 3 — ubah produk nomor 3"
        ),
    ),
    "orders": (
        pgettext("plural", "Pesanan"),
        _("/orders, /order, /paid, /bought, /ship, /done, /recap"),
        _(
            "*Pesanan*\n"
            "/orders DEMO [belum bayar|bukti|lunas|dikirim] — daftar pesanan\n"
            "/order JP-ABCDE — detail pesanan\n"
            "/paid JP-ABCDE — tandai lunas (bayar di luar bot)\n"
            "/bought JP-ABCDE · /ship JP-ABCDE RESI123 · /done JP-ABCDE — kabari pembeli\n"
            "/recap DEMO [csv] — rekap pesanan (XLSX / CSV)"
        ),
    ),
    "money": (
        _("Uang"),
        _("/ongkir, /refund, /mutasi, /qris, /balance"),
        _(
            "*Uang*\n"
            "/ongkir JP-ABCDE 25000 · /ongkir DEMO 25000 — ongkir satu pesanan / semua "
            "yang belum\n"
            "/refund JP-ABCDE 1 [jumlah] [alasan] — barang nomor 1 tidak didapat\n"
            "/refunds — refund yang belum dikembalikan, dengan rekening pembeli\n"
            "/refunded JP-ABCDE — refund sudah dikembalikan (atau foto bukti + caption itu)\n"
            "File mutasi (CSV/XLSX) + caption /mutasi — cocokkan transfer masuk\n"
            "Foto QRIS + caption /qris — QRIS dengan nominal tepat di setiap instruksi bayar\n"
            "/qris rekening BCA 1234567890 — rekening pencairan QRIS, untuk /mutasi\n"
            "/balance DEMO — tagih pelunasan trip DP"
        ),
    ),
    "broadcasts": (
        pgettext("plural", "Broadcast"),
        _("/broadcast, /broadcast status, /reply"),
        _(
            "*Broadcast & pertanyaan*\n"
            "/broadcast DEMO pesan — perkiraan biaya, lalu kirim\n"
            "/broadcast status — broadcast terakhir dan hasil kirimnya\n"
            "/reply Q-AB12 jawaban — jawab pertanyaan pembeli"
        ),
    ),
}


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
        (ctx.t(title), [(ctx.t(title), ctx.t(desc), JastiperTap("help", key))])
        for key, (title, desc, _text) in GROUPS.items()
    ]
    ctx.reply(replies.list_sections(body, ctx.t(_("Kelompok")), sections))


def show_group(ctx: Ctx, key: str) -> None:
    """One group's commands, with examples."""
    group = GROUPS.get(key)
    if group is None:
        show_help(ctx)
        return
    ctx.say(group[2])
