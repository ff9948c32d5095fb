"""``/qris``: the jastiper's merchant QRIS, typed after the command or as a photo of the
sticker captioned ``/qris``. The bot reads it, shows the merchant back with *Pakai* /
*Batal*, and once confirmed every payment instruction carries a dynamic QRIS for the
exact amount (``services/payqris.py``). ``/qris rekening BANK NOMOR`` records the account
those payments settle into, whose statement ``/mutasi`` then takes."""

from __future__ import annotations

from flows.base import Ctx
from flows.jastiper.machine import jastipers_only
from locales import _
from services import payqris, qris, replies
from services.payloads import JastiperTap
from storage.models import Jastiper

PENDING = "qris_pending"
OFF_WORDS = frozenset({"off", "hapus", "remove", "delete"})
ACCOUNT_WORDS = frozenset({"rekening", "account", "pencairan", "settlement"})
HOWTO = _(
    "Kirim foto QRIS statis tokomu dengan caption /qris, atau ketik /qris lalu teks QRIS-nya "
    "(diawali 000201). Setelah itu setiap instruksi bayar menyertakan QRIS dengan nominal "
    "tepat. /qris off untuk berhenti."
)
ACCOUNT_HOWTO = _(
    "Pembayaran QRIS masuk ke rekening pencairan merchant-mu, yang tidak tertulis di "
    "QRIS. Catat dengan /qris rekening BANK NOMOR (misalnya /qris rekening BCA 1234567890) "
    "supaya /mutasi rekening itu ikut mengonfirmasi pembayaran."
)
PROBLEMS = {
    qris.Problem.NOT_QRIS: _(
        "Itu bukan QRIS pembayaran (misalnya link atau kode lain). Kirim foto QRIS statis "
        "tokomu dari aplikasi merchant, dengan caption /qris."
    ),
    qris.Problem.BAD_CRC: _(
        "QRIS itu rusak atau terpotong: kode pemeriksanya (CRC) tidak cocok. Salin ulang "
        "teksnya, atau kirim fotonya dengan caption /qris."
    ),
    qris.Problem.DYNAMIC: _(
        "Itu QRIS dinamis untuk satu transaksi (nominalnya sudah terisi). Kirim QRIS *statis* "
        "tokomu, yang dicetak di stiker atau ada di aplikasi merchant."
    ),
}
PHOTO_PROBLEMS = {
    "no_qr": _(
        "Tidak ada QR yang terbaca di foto itu. Foto QRIS-nya lebih dekat dan tegak lurus, "
        "pastikan tidak buram atau silau, lalu kirim lagi dengan caption /qris."
    ),
    "too_large": _(
        "Fotonya terlalu besar. Kirim foto biasa (bukan file asli) dengan caption /qris."
    ),
    "not_image": _("File itu bukan foto yang bisa dibaca. Kirim foto QRIS dengan caption /qris."),
    "download_failed": _("Fotonya tidak sampai. Kirim lagi dengan caption /qris ya."),
}


async def cmd_qris(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """``/qris <text>`` proposes a merchant QRIS; ``/qris off`` removes it; ``/qris``
    alone says which one is set and how to set one."""
    text = ctx.incoming.text.strip()[len(ctx.incoming.words[0]) :].strip()
    if not text:
        show_current(ctx, jastiper)
        return
    if text.lower() in OFF_WORDS:
        payqris.set_merchant(ctx.session, jastiper, None, actor_user_id=ctx.user.id)
        ctx.forget(PENDING)
        ctx.say(_("QRIS dihapus. Instruksi bayar kembali hanya berisi rekening bank."))
        return
    first, _space, rest = text.partition(" ")
    if first.lower() in ACCOUNT_WORDS:
        set_account(ctx, jastiper, rest.strip())
        return
    propose(ctx, [text])


def set_account(ctx: Ctx, jastiper: Jastiper, text: str) -> None:
    """``/qris rekening BANK NOMOR`` records the account QRIS payments settle into;
    ``/qris rekening off`` forgets it; ``/qris rekening`` alone says which and how."""
    if text.lower() in OFF_WORDS:
        payqris.set_settlement(ctx.session, jastiper, None, actor_user_id=ctx.user.id)
        ctx.say(_("Rekening pencairan QRIS dihapus."))
        return
    account = payqris.settlement_from(text)
    if account is None:
        current = payqris.settlement_of(jastiper)
        if current is not None:
            ctx.say(_("Rekening pencairan QRIS: {account}."), account=_joined(current))
        ctx.say(ACCOUNT_HOWTO)
        return
    payqris.set_settlement(ctx.session, jastiper, account, actor_user_id=ctx.user.id)
    ctx.say(
        _(
            "Rekening pencairan QRIS dicatat: {account} ✅ Mutasi rekening ini (/mutasi) "
            "sekarang ikut mengonfirmasi pembayaran pesananmu."
        ),
        account=_joined(account),
    )


def _joined(account: tuple[str, str]) -> str:
    return " ".join(part for part in account if part)


def show_current(ctx: Ctx, jastiper: Jastiper) -> None:
    """Names the merchant QRIS in use (if any), the account it settles into, and how to
    set them."""
    merchant = payqris.merchant_of(jastiper)
    if merchant is not None:
        ctx.say(
            _("QRIS yang dipakai sekarang: {name} ({city})."),
            name=merchant.name or "-",
            city=merchant.city or "-",
        )
        account = payqris.settlement_of(jastiper)
        if account is not None:
            ctx.say(_("Rekening pencairan QRIS: {account}."), account=_joined(account))
        else:
            ctx.say(ACCOUNT_HOWTO)
    ctx.say(HOWTO)


@jastipers_only
async def on_qris_photo(ctx: Ctx, jastiper: Jastiper) -> None:
    """A photo (or image file) captioned ``/qris``: the QR read from it is proposed."""
    inc = ctx.incoming
    if inc.upload_error or inc.qr_texts is None:
        ctx.say(PHOTO_PROBLEMS.get(inc.upload_error or "", PHOTO_PROBLEMS["not_image"]))
        return
    if not inc.qr_texts:
        ctx.say(PHOTO_PROBLEMS["no_qr"])
        return
    propose(ctx, list(inc.qr_texts))


def propose(ctx: Ctx, texts: list[str]) -> None:
    """Reads the first text that is a usable static QRIS and asks to confirm its merchant;
    otherwise says what is wrong with the (first) one."""
    problem = qris.Problem.NOT_QRIS
    for i, text in enumerate(texts):
        try:
            merchant = qris.read_static(text)
        except qris.QrisError as error:
            problem = error.problem if i == 0 else problem
            continue
        ctx.remember(**{PENDING: merchant.payload})
        body = ctx.t(
            _("QRIS terbaca:\n*{name}*\n{city}\n\nPakai QRIS ini untuk instruksi bayar?"),
            name=merchant.name or "-",
            city=merchant.city or "-",
        )
        ctx.reply(
            replies.buttons(
                body,
                [
                    (ctx.t(_("Pakai QRIS ini")), JastiperTap("qris", "ok")),
                    (ctx.t(_("Batal")), JastiperTap("qris", "no")),
                ],
            )
        )
        return
    ctx.say(PROBLEMS[problem])


async def on_confirm(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """*Pakai QRIS ini* saves the proposed QRIS; *Batal* drops it."""
    pending = ctx.data.get(PENDING)
    ctx.forget(PENDING)
    if value != "ok":
        ctx.say(_("Oke, QRIS tidak diubah."))
        return
    if not isinstance(pending, str):
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))
        return
    merchant = qris.read_static(pending)
    payqris.set_merchant(ctx.session, jastiper, merchant, actor_user_id=ctx.user.id)
    ctx.say(
        _(
            "QRIS {name} disimpan ✅ Mulai sekarang setiap instruksi bayar menyertakan QRIS "
            "dengan nominal tepat, jadi pembeli tinggal scan."
        ),
        name=merchant.name or "-",
    )
