"""Automatic notices: gathered new products, scheduled summaries, payment reminders, and
the proof backup — each safe to run twice."""

from __future__ import annotations

import datetime as dt

import boto3
from sqlalchemy import func, select, update

from bot import jobs
from bot.keys import OUTBOX
from services import notices
from storage.models import Broadcast, Order, PaymentProof, Product, Trip, User, utcnow
from storage.proof_copies import replicate_proofs
from storage.repo import messaging
from tests.conftest import ACCESS_KEY, REGION, SECRET_KEY, Harness, user_named
from tests.journeys import joined, last_wrote_days_ago, order_one, run_actor, templates_to


async def _add_products(h: Harness, *names: str) -> None:
    async with h.db.transaction() as session:
        trip = (await session.execute(select(Trip))).scalar_one()
        last = (
            await session.execute(
                select(func.max(Product.position)).where(Product.trip_id == trip.id)
            )
        ).scalar_one()
        for i, name in enumerate(names, start=last + 1):
            session.add(Product(trip_id=trip.id, position=i, name=name, price=50_000, stock=5))


def _texts(h: Harness, number: str, marker: str) -> list[str]:
    return [t for t in h.fake.texts_to(number) if marker in t]


async def test_products_added_in_a_row_reach_each_buyer_as_one_notice(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    inside, outside, stopped = [await joined(h, n) for n in ("In", "Out", "Stop")]
    await h.say(stopped, "STOP")
    await last_wrote_days_ago(h, "Out", 2)
    await _add_products(h, "Tokyo Banana", "Royce Nama Chocolate", "Jaga Pokkuru")
    assert await jobs.announce_new_products(h.db) == 0, "still adding: wait"
    assert await jobs.announce_new_products(h.db, quiet=dt.timedelta(0)) == 1
    assert await jobs.announce_new_products(h.db, quiet=dt.timedelta(0)) == 0
    await run_actor(h)
    await h.app[OUTBOX].flush()
    (notice,) = _texts(h, inside, "Produk baru")
    assert "Tokyo Banana" in notice and "Royce" in notice and "Jaga Pokkuru" in notice
    # free only without a template: outside the window, and after STOP, nothing
    assert _texts(h, outside, "Produk baru") == [] and templates_to(h, outside) == []
    assert _texts(h, stopped, "Produk baru") == []
    async with h.db.read() as session:
        row = (await session.execute(select(Broadcast))).scalar_one()
    assert (row.kind, row.status, row.allow_paid) == ("products", "done", False)
    assert not any("Broadcast DEMO selesai" in t for t in h.fake.texts_to("6281100000001"))

    # the operator configures a template: the next notice reaches the one outside too
    async with h.db.transaction() as session:
        await messaging.set_template(
            session,
            "products",
            locale="id",
            name="new_products",
            language="id",
            category="marketing",
        )
    await _add_products(h, "Shiroi Koibito")
    await jobs.run_periodic(h.db, None)  # the scheduler's pass (queues, no actor)
    assert await jobs.announce_new_products(h.db, quiet=dt.timedelta(0)) == 1
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert len(_texts(h, inside, "Shiroi Koibito")) == 1
    (template,) = templates_to(h, outside)
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert template["name"] == "new_products" and params == ["Jastip Tokyo Demo", "Shiroi Koibito"]


async def test_a_summary_per_trip_and_period_says_what_each_buyer_needs(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    owing, idle = await joined(h, "Owing"), await joined(h, "Idle")
    await order_one(h, owing, "Daiso Storage Box", "1")
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(summary_every="daily"))
        await session.execute(
            update(Product).values(created_at=utcnow() - dt.timedelta(days=5))
        )  # nothing new this day
    # a day that is over: every buyer is due at once
    day = (utcnow() - dt.timedelta(days=2)).astimezone(notices.JAKARTA)
    dawn = day.replace(hour=6, minute=0)  # before the day's summary exists
    evening = day.replace(hour=19, minute=30)
    assert await jobs.schedule_summaries(h.db, now=dawn) == 0
    assert await jobs.schedule_summaries(h.db, now=evening) == 1
    assert await jobs.schedule_summaries(h.db, now=evening) == 0, "once per period"
    await run_actor(h)
    await h.app[OUTBOX].flush()
    (summary,) = _texts(h, owing, "🗓️ Ringkasan")
    async with h.db.read() as session:
        order = (await session.execute(select(Order))).scalar_one()
    assert "Belum dibayar" in summary and order.code in summary
    assert _texts(h, idle, "🗓️ Ringkasan") == [], "nothing to tell: no message"
    # the jastiper switches it off
    (answer,) = await h.say("6281100000001", "/summary DEMO off", name="Tina")
    assert "tidak dikirim" in answer
    next_evening = evening + dt.timedelta(days=1)
    assert await jobs.schedule_summaries(h.db, now=next_evening) == 0


def test_weekly_summaries_fall_on_sunday() -> None:
    trip = Trip(summary_every="weekly")
    sunday = dt.datetime(2026, 11, 29, 1, 5, tzinfo=dt.UTC)  # Sunday 08.05 WIB
    assert notices.summary_period(trip, sunday) == "2026-W48"
    assert notices.summary_period(trip, sunday - dt.timedelta(hours=2)) is None  # 06.05
    assert notices.summary_period(trip, sunday + dt.timedelta(days=1)) is None
    assert notices.summary_period(Trip(summary_every="off"), sunday) is None


async def test_a_buyer_whose_window_closes_before_the_evening_gets_the_summary_in_time(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    closing, fresh = await joined(h, "Closing"), await joined(h, "Fresh")
    await order_one(h, closing, "Daiso Storage Box", "1")
    await order_one(h, fresh, "Daiso Storage Box", "1")
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(summary_every="daily"))
        # Closing last wrote 23 h 45 min ago: their free window ends in 15 minutes
        await session.execute(
            update(User)
            .where(User.id == await user_named(session, "Closing"))
            .values(last_inbound_at=utcnow() - dt.timedelta(hours=23, minutes=45))
        )
    tomorrow = (utcnow() + dt.timedelta(days=1)).astimezone(notices.JAKARTA)
    assert await jobs.schedule_summaries(h.db, now=tomorrow.replace(hour=8)) == 1
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert len(_texts(h, closing, "🗓️ Ringkasan")) == 1, "sent before the window closes"
    assert _texts(h, fresh, "🗓️ Ringkasan") == [], "the rest wait for the evening"
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "sending"
    # the evening comes: the others get theirs, nobody twice, and it is finished
    async with h.db.transaction() as session:
        row = (await session.execute(select(Broadcast))).scalar_one()
        row.data = {**(row.data or {}), "deliver_at": utcnow().isoformat()}
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert len(_texts(h, closing, "🗓️ Ringkasan")) == 1
    assert len(_texts(h, fresh, "🗓️ Ringkasan")) == 1
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "done"


async def test_an_unpaid_order_is_reminded_once_before_its_deadline(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    soon, later = await joined(h, "Soon"), await joined(h, "Later")
    await order_one(h, soon, "Daiso Storage Box", "1")
    await order_one(h, later, "Daiso Storage Box", "1")
    async with h.db.transaction() as session:
        ids = dict((await session.execute(select(User.display_name, User.id))).all())
        await session.execute(
            update(Order)
            .where(Order.user_id == ids["Soon"])
            .values(payment_deadline=utcnow() + dt.timedelta(hours=3))
        )
        await session.execute(
            update(Order)
            .where(Order.user_id == ids["Later"])
            .values(payment_deadline=utcnow() + dt.timedelta(hours=20))
        )
    assert await jobs.remind_unpaid(h.db) == 1
    assert await jobs.remind_unpaid(h.db) == 0
    await h.app[OUTBOX].flush()
    (reminder,) = _texts(h, soon, "belum dibayar")
    assert "Transfer Rp" in reminder and "WIB" in reminder
    assert _texts(h, later, "belum dibayar") == []


async def test_proofs_are_copied_once_to_the_backup_bucket(
    harness: Harness, moto_endpoint: str, bucket: str
) -> None:
    import dataclasses

    from bot.keys import MEDIA

    h = harness
    await h.seed_demo()
    buyer = await joined(h, "Payer")
    await order_one(h, buyer, "Daiso Storage Box", "1")
    await h.app[MEDIA].put("proofs/abc.jpg", b"\xff\xd8proof-bytes", "image/jpeg")
    async with h.db.transaction() as session:
        order = (await session.execute(select(Order))).scalar_one()
        session.add(
            PaymentProof(
                order_id=order.id,
                media_key="proofs/abc.jpg",
                content_sha256="0" * 64,
                mime_type="image/jpeg",
            )
        )
    settings = dataclasses.replace(
        h.settings,
        s3_backup_bucket=bucket,
        s3_endpoint_url=moto_endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
    )
    assert await replicate_proofs(h.db, settings) == 1
    assert await replicate_proofs(h.db, settings) == 0
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    copy = s3.get_object(Bucket=bucket, Key="proofs/abc.jpg")["Body"].read()
    # the copy is the object as stored, sealed (issue #23): no proof in plain text off
    # the host either, and the PII key opens it
    assert b"proof-bytes" not in copy
    assert h.cipher.open_file(copy, "proofs/abc.jpg") == b"\xff\xd8proof-bytes"
