"""``/profile``: what a jastiper's public page (``/j/<slug>``) shows about them — a short
bio, a few links (Instagram, TikTok, a shop), and an avatar sent as a photo captioned
``/profile``."""

from __future__ import annotations

from flows.base import Ctx
from flows.jastiper.machine import jastipers_only
from locales import _
from services import profiles
from storage.models import Jastiper

OFF_WORDS = frozenset({"off", "hapus", "remove", "delete"})
HOWTO = _(
    "Atur halaman publikmu {page}:\n"
    "/profile bio Jastip Jepang & Korea tiap bulan — bio singkat\n"
    "/profile link https://instagram.com/namamu — tambah link (atau @namamu)\n"
    "/profile links off · /profile bio off — hapus\n"
    "Foto + caption /profile — foto profil"
)
BAD_PHOTO = _("Fotonya tidak bisa dipakai (JPG/PNG, maks. 5 MB). Kirim ulang ya.")


def _page(ctx: Ctx, jastiper: Jastiper) -> str:
    return f"{str(ctx.resources.settings.public_base_url).rstrip('/')}/j/{jastiper.slug}"


def show(ctx: Ctx, jastiper: Jastiper) -> None:
    """What the page shows now, and how to change it."""
    none = ctx.t(_("(belum ada)"))
    links = "\n".join(f"• {x}" for x in jastiper.links or []) or none
    ctx.say(
        _("*Profil di halamanmu*\nBio: {bio}\nLink:\n{links}\nFoto profil: {avatar}"),
        bio=jastiper.bio or none,
        links=links,
        avatar=ctx.t(_("ada")) if jastiper.avatar_key else none,
    )
    ctx.say(HOWTO, page=_page(ctx, jastiper))


async def cmd_profile(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """``/profile``, ``/profile bio <text>``, ``/profile link <url>``, ``… off``."""
    what = args[0].lower() if args else ""
    rest = ctx.incoming.text.strip().split(None, 2)[2:] if len(args) > 1 else []
    value = rest[0].strip() if rest else ""
    actor = ctx.user.id
    if what == "bio" and value.lower() in OFF_WORDS:
        profiles.set_bio(ctx.session, jastiper, None, actor_user_id=actor)
        ctx.say(_("Bio dihapus dari halamanmu."))
    elif what == "bio":
        bio = profiles.check_bio(value)
        profiles.set_bio(ctx.session, jastiper, bio, actor_user_id=actor)
        ctx.say(_("Bio tersimpan. Lihat halamanmu: {page}"), page=_page(ctx, jastiper))
    elif what in ("link", "links") and value.lower() in OFF_WORDS:
        profiles.clear_links(ctx.session, jastiper, actor_user_id=actor)
        ctx.say(_("Semua link dihapus dari halamanmu."))
    elif what in ("link", "links"):
        link = profiles.check_link(value)
        profiles.add_link(ctx.session, jastiper, link, actor_user_id=actor)
        ctx.say(
            _("Link ditambahkan ({n} dari {max}): {link}"),
            n=len(jastiper.links or []),
            max=profiles.LINKS_MAX,
            link=link,
        )
    elif what in ("photo", "foto", "avatar") and value.lower() in OFF_WORDS:
        profiles.set_avatar(ctx.session, jastiper, None, actor_user_id=actor)
        ctx.say(_("Foto profil dihapus."))
    else:
        show(ctx, jastiper)


@jastipers_only
async def on_profile_photo(ctx: Ctx, jastiper: Jastiper) -> None:
    """A photo captioned ``/profile``: the avatar on the public page."""
    if ctx.incoming.upload_error or not ctx.incoming.media_key:
        ctx.say(BAD_PHOTO)
        return
    profiles.set_avatar(ctx.session, jastiper, ctx.incoming.media_key, actor_user_id=ctx.user.id)
    ctx.say(_("Foto profil tersimpan. Lihat halamanmu: {page}"), page=_page(ctx, jastiper))
