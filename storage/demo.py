"""``jastipin demo``: the demo jastiper, trip and catalogue the design fixes (idempotent)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import PiiCipher
from storage.models import Jastiper, JastiperStatus, Product, Trip, TripStatus, utcnow
from storage.repo.users import upsert_user

DEMO_PHONE = "6281100000001"
DEMO_CODE = "DEMO"
DEMO_TITLE = "Jastip Tokyo Demo"

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


async def seed_demo(session: AsyncSession, cipher: PiiCipher) -> bool:
    """Create the demo data if it is missing; return True when something was created."""
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
    for position, (name, price, stock, description) in enumerate(DEMO_PRODUCTS, start=1):
        session.add(
            Product(
                trip_id=trip.id,
                position=position,
                name=name,
                price=price,
                stock=stock,
                description=description,
                announced_at=utcnow(),  # the trip's launch, not news to announce
            )
        )
    await session.flush()
    return True
