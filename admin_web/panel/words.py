"""Words, not codes: what the panels show for an audit action, its details, a queue
status or a proof's kind, in the reader's language (every text is a catalogue entry).

The codes stay in the database and in the URLs; only people see these sentences.
An action no entry knows yet reads "Other action" (the code is kept in a tooltip), so
a new action never shows as ``order.something`` on a page.
"""

from __future__ import annotations

from typing import Any

from locales import Translator, _

ACTIONS: dict[str, str] = {
    "admin.login": _("Admin masuk ke panel"),
    "admin.login.failed": _("Percobaan masuk gagal"),
    "admin.login.throttled": _("Percobaan masuk ditahan (terlalu sering gagal)"),
    "admin.logout": _("Admin keluar dari panel"),
    "admin.password.rehashed": _("Kata sandi admin diperbarui ke hash baru"),
    "admin.create_user": _("Akun admin dibuat"),
    "admin.disable": _("Akun admin dinonaktifkan"),
    "backup.done": _("Cadangan data dibuat"),
    "broadcast.estimate": _("Perkiraan broadcast dihitung"),
    "broadcast.confirm": _("Broadcast dikonfirmasi dan dikirim"),
    "broadcast.cancel": _("Broadcast dibatalkan"),
    "jastiper.add": _("Jastiper ditambahkan"),
    "jastiper.request": _("Pendaftaran jastiper masuk"),
    "jastiper.approve": _("Jastiper disetujui"),
    "jastiper.decline": _("Pendaftaran jastiper ditolak"),
    "jastiper.suspend": _("Jastiper ditangguhkan"),
    "jastiper.reactivate": _("Jastiper diaktifkan lagi"),
    "jastiper.qris": _("QRIS jastiper disimpan"),
    "jastiper.qris_removed": _("QRIS jastiper dihapus"),
    "jastiper.web.link": _("Link panel jastiper dikirim"),
    "jastiper.web.login": _("Jastiper membuka panel web"),
    "jastiper.web.logout": _("Jastiper keluar dari panel web"),
    "order.awaiting_payment": _("Pesanan kembali menunggu pembayaran"),
    "order.proof_submitted": _("Bukti transfer pesanan dikirim"),
    "order.paid": _("Pesanan ditandai lunas"),
    "order.dp_paid": _("DP pesanan ditandai dibayar"),
    "order.awaiting_balance": _("Pesanan menunggu pelunasan"),
    "order.bought": _("Pesanan ditandai sudah dibeli"),
    "order.shipped": _("Pesanan ditandai dikirim"),
    "order.done": _("Pesanan ditandai selesai"),
    "order.cancelled": _("Pesanan dibatalkan"),
    "order.expired": _("Pesanan kedaluwarsa"),
    "order.refund": _("Refund pesanan dicatat"),
    "order.refund_account": _("Rekening refund disimpan"),
    "order.refunded": _("Refund sudah dikembalikan"),
    "order.shipping": _("Ongkir pesanan ditagih"),
    "product.add": _("Produk ditambahkan"),
    "product.hide": _("Produk disembunyikan"),
    "product.show": _("Produk ditampilkan lagi"),
    "product.price": _("Harga produk diubah"),
    "product.stock": _("Stok produk diubah"),
    "proof.approve": _("Bukti transfer disetujui"),
    "proof.reject": _("Bukti transfer ditolak"),
    "question.reply": _("Pertanyaan pembeli dijawab"),
    "queue.inbound.requeue": _("Pesan masuk diproses ulang"),
    "queue.jobs.retry": _("Tugas mati dikembalikan ke antrean"),
    "queue.outbox.retry": _("Pesan gagal dikirim ulang"),
    "statement.apply": _("Mutasi rekening dicocokkan"),
    "statement.late": _("Transfer terlambat ditemukan di mutasi"),
    "trip.create": _("Trip dibuat"),
    "trip.open": _("Trip dibuka"),
    "trip.closed": _("Trip ditutup"),
    "trip.archived": _("Trip diarsipkan"),
    "trip.balance": _("Tagihan pelunasan dikirim"),
    "trip.recap": _("Rekap trip diunduh"),
    "trip.summary": _("Ringkasan trip dikirim"),
}
OTHER_ACTION = _("Tindakan lain")

# the audit detail's keys, as a label
DETAIL_KEYS: dict[str, str] = {
    "amount": _("Nominal"),
    "broadcast": _("Broadcast"),
    "bytes": _("Ukuran (byte)"),
    "closed": _("Trip yang ditutup"),
    "code": _("Kode"),
    "every": _("Setiap"),
    "file": _("File"),
    "format": _("Format"),
    "ids": _("Nomor"),
    "item": _("Barang"),
    "jastiper": _("Jastiper #"),
    "jobs": _("Tugas"),
    "n": _("Jumlah"),
    "network": _("Jaringan"),
    "off_host": _("Salinan di luar server"),
    "order": _("Pesanan"),
    "orders": _("Jumlah pesanan"),
    "paid": _("Termasuk pesan berbayar"),
    "photo": _("Foto"),
    "price": _("Harga"),
    "product": _("Produk #"),
    "quantity": _("Jumlah"),
    "reason": _("Alasan"),
    "recipients": _("Penerima"),
    "ref": _("Referensi"),
    "rows": _("Baris"),
    "sessions": _("Sesi diakhiri"),
    "shipping": _("Ongkir"),
    "stock": _("Stok"),
    "units": _("Pesan"),
}
OTHER_DETAIL = _("Lainnya")
# free-text values some actions record, as a sentence
DETAIL_VALUES: dict[str, str] = {
    "wrong password or disabled": _("kata sandi salah atau akun nonaktif"),
    "unknown account": _("akun tidak dikenal"),
    "unknown": _("tidak diketahui"),
}
MONEY_KEYS = frozenset({"amount", "price", "shipping"})

OUTBOX: dict[str, str] = {
    "pending": _("Menunggu dikirim"),
    "sending": _("Sedang dikirim"),
    "sent": _("Terkirim"),
    "failed": _("Gagal"),
}
INBOUND: dict[str, str] = {
    "pending": _("Menunggu diproses"),
    "done": _("Sudah diproses"),
    "failed": _("Gagal diproses"),
}
UNIT_KINDS: dict[str, str] = {
    "message": _("Pesan dari pengguna"),
    "status": _("Status pengiriman"),
    "other": _("Lainnya"),
}
PROOF_KINDS: dict[str, str] = {
    "full": _("pelunasan penuh"),
    "dp": _("uang muka (DP)"),
    "balance": _("pelunasan sisa"),
}


def action(t: Translator, code: str) -> str:
    """An audit action as a sentence."""
    return t(ACTIONS[code]) if code in ACTIONS else t(OTHER_ACTION)


def value(t: Translator, key: str, raw: Any) -> str:
    if isinstance(raw, bool):
        return t(_("ya")) if raw else t(_("tidak"))
    if isinstance(raw, list):
        return ", ".join(value(t, key, v) for v in raw)
    if key in MONEY_KEYS and isinstance(raw, int):
        return t.money(raw)
    if isinstance(raw, str) and raw in DETAIL_VALUES:
        return t(DETAIL_VALUES[raw])
    return str(raw)


def details(t: Translator, detail: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An audit row's details as (label, value) pairs in the reader's language."""
    out = []
    for key, raw in sorted((detail or {}).items()):
        label = t(DETAIL_KEYS[key]) if key in DETAIL_KEYS else t(OTHER_DETAIL)
        out.append((label, value(t, key, raw)))
    return out


def label(t: Translator, table: dict[str, str], code: str) -> str:
    """A status from one of the tables above (an unknown one: "Other")."""
    return t(table[code]) if code in table else t(_("Lainnya"))
