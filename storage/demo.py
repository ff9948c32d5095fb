"""``jastipin demo``: the demo jastiper, trip and catalogue the design fixes (idempotent)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import PiiCipher
from storage.media import MediaStore
from storage.models import Jastiper, JastiperStatus, Product, Trip, TripStatus, utcnow
from storage.repo import jastipers, links
from storage.repo.users import upsert_user

DEMO_PHONE = "6281100000001"
DEMO_CODE = "DEMO"
DEMO_TITLE = "Jastip Tokyo Demo"
# the demo trip's short link: /s/demo (random slugs never hold an "o", so none collides)
DEMO_LINK = "demo"

DEMO_PRODUCTS: list[tuple[str, int, int, str]] = [
    ("Tokyo Banana 8 pcs", 145_000, 20, "Kue pisang khas Tokyo, isi 8."),
    ("Kit Kat Matcha", 85_000, 30, "Kit Kat rasa matcha, isi 12 mini."),
    ("Royce Nama Chocolate", 250_000, 10, "Cokelat nama Royce original, 20 potong."),
    ("Shiroi Koibito 12", 180_000, 15, "Biskuit langue de chat cokelat putih."),
    ("Calbee Jagabee", 65_000, 25, "Keripik kentang stik, 5 bungkus."),
    ("Uniqlo Heattech Tee", 249_000, 12, "Kaos Heattech lengan panjang, ukuran S–XL."),
    ("Muji Gel Pen Set", 95_000, 40, "Set 10 pulpen gel 0.5 mm."),
    ("Daiso Storage Box", 35_000, 50, "Kotak penyimpanan lipat."),
    ("Pokemon Plush Pikachu", 320_000, 8, "Boneka Pikachu resmi Pokemon Center."),
    ("Hada Labo Gokujyun", 120_000, 18, "Lotion hyaluronic 170 ml."),
    ("Biore UV Aqua Rich", 110_000, 22, "Sunscreen SPF50+ 70 g."),
    ("Sanrio Tumbler", 210_000, 0, "Tumbler Hello Kitty edisi Tokyo (habis)."),
]


def demo_photo(name: str) -> bytes:
    """A square JPEG with the product's name on a colour of its own (no stock photos to
    license: the demo's catalogue still shows pictures)."""
    from PIL import Image, ImageDraw, ImageFont

    hue = zlib.crc32(name.encode()) % 360
    img = Image.new("HSV", (900, 900), (int(hue * 255 / 360), 90, 235)).convert("RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=64)
    words, lines = name.split(), [""]
    for word in words:
        candidate = f"{lines[-1]} {word}".strip()
        if draw.textlength(candidate, font=font) > 780 and lines[-1]:
            lines.append(word)
        else:
            lines[-1] = candidate
    draw.multiline_text(
        (450, 450), "\n".join(lines), font=font, fill=(40, 40, 40), anchor="mm", align="center"
    )
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


async def seed_demo(
    session: AsyncSession, cipher: PiiCipher, media: MediaStore | None = None
) -> bool:
    """Create the demo data if it is missing; return True when something was created.
    With a media store, each demo product gets a photo."""
    existing = (
        await session.execute(select(Trip).where(Trip.code == DEMO_CODE))
    ).scalar_one_or_none()
    if existing is not None:
        return False
    user = await upsert_user(
        session, cipher, bsuid=None, wa_id=DEMO_PHONE, profile_name="Tina", touch_inbound=False
    )
    user.display_name = user.display_name or "Tina"
    jastiper = (
        await session.execute(select(Jastiper).where(Jastiper.user_id == user.id))
    ).scalar_one_or_none()
    if jastiper is None:
        jastiper = Jastiper(
            user_id=user.id,
            name="Tina",
            slug=await jastipers.free_slug(session, "Tina"),
            status=JastiperStatus.APPROVED.value,
            bank_name="BCA",
            bank_account_number="1234567890",
            bank_account_name="Tina Wijaya",
        )
        session.add(jastiper)
        await session.flush()
    trip = Trip(
        jastiper_id=jastiper.id,
        code=DEMO_CODE,
        title=DEMO_TITLE,
        destination="Tokyo, Jepang",
        closes_on=(utcnow() + dt.timedelta(days=21)).date(),
        status=TripStatus.OPEN.value,
        payment_type="full",
        fee_per_item=10_000,
        bank_name=jastiper.bank_name,
        bank_account_number=jastiper.bank_account_number,
        bank_account_name=jastiper.bank_account_name,
    )
    session.add(trip)
    await session.flush()
    await links.add(session, DEMO_LINK, f"/t/{DEMO_CODE}", trip_id=trip.id)
    for position, (name, price, stock, description) in enumerate(DEMO_PRODUCTS, start=1):
        image_key = None
        if media is not None:
            image_key = f"products/demo/{position:02d}.jpg"
            await media.put(image_key, await asyncio.to_thread(demo_photo, name), "image/jpeg")
        session.add(
            Product(
                trip_id=trip.id,
                position=position,
                name=name,
                price=price,
                stock=stock,
                description=description,
                image_key=image_key,
                announced_at=utcnow(),  # the trip's launch, not news to announce
            )
        )
    await session.flush()
    return True
