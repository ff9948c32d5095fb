"""Chat steps shared by the conversation tests: a buyer who joined the demo trip, an
order placed, a jastiper's command, a statement sent, a broadcast run."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from PIL import Image
from sqlalchemy import select, update

from bot import jobs, simulate
from bot.keys import ACTORS, BROKER
from storage.demo import DEMO_PHONE
from storage.models import Order, Trip, User, utcnow
from tests.conftest import Harness, _text_of, phone, user_named

ROYCE = "Royce Nama Chocolate"  # product #3: Rp 250.000, the demo fee is Rp 10.000 per item
CALBEE = "Calbee Jagabee"  # product #5: Rp 65.000
CSV = "text/csv"
BROADCAST_TEXT = "Matcha Kit Kat sudah datang!"


def jpeg(colour: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


async def joined(h: Harness, name: str = "Sari") -> str:
    """A buyer who joined the demo trip and consented."""
    buyer = phone()
    await h.say(buyer, "JOIN DEMO", name=name)
    await h.tap_title(buyer, f"Pakai {name}")
    await h.tap_title(buyer, "Ya, kabari aku")
    return buyer


async def order_one(h: Harness, buyer: str, product: str, qty: str = "2") -> str:
    """Catalogue → product → quantity → skip note → checkout → saved/new address → confirm.
    Returns the payment instructions text."""
    (found,) = await h.say(buyer, f"CARI {product}")  # search finds it on any page
    assert "Hasil pencarian" in found
    await h.tap_title(buyer, product)
    await h.tap_title(buyer, "Pesan")
    return await checkout(h, buyer, qty)


# an address as the checkout asks it: name, phone, street, city, postal code
SARI_ADDRESS = (
    "Sari Wulandari",
    "0812-3456-7890",
    "Jl. Melati No. 5, RT 01/RW 02, Kebayoran Baru",
    "Jakarta Selatan",
    "12120",
)


async def checkout(
    h: Harness, buyer: str, qty: str = "2", address: tuple[str, ...] = SARI_ADDRESS
) -> str:
    """From the quantity question to the placed order: ``qty``, no note, checkout, the
    saved address (else ``address`` typed in), confirm. Returns the payment text."""
    await h.tap_title(buyer, qty)
    await h.tap_title(buyer, "Lewati")
    (asked,) = await h.tap_title(buyer, "Checkout")
    if "alamat tersimpan" in asked:
        await h.tap_title(buyer, "Ya, pakai ini")
    else:
        for answer in address:
            await h.say(buyer, answer)
        await h.tap_title(buyer, "Benar")
    (done,) = await h.tap_title(buyer, "Konfirmasi")
    return done


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Jakarta")).date()


def bca(*lines: tuple[int, str, str], day: dt.date | None = None) -> bytes:
    """A KlikBCA-shaped CSV export: header lines, then ``'dd/mm`` dates, amounts written
    ``190,034.00`` with the CR/DB marker in the next column, a running balance, and the
    totals under the table. ``lines``: (amount, description, "CR" or "DB")."""
    day = day or today()
    start = day.replace(day=1)
    out = [
        "No. rekening : 1234567890",
        "Nama : TINA JASTIP",
        f"Periode : {start:%d/%m/%Y} - {day:%d/%m/%Y}",
        "Kode Mata Uang : Rp",
        "",
        "Tanggal Transaksi,Keterangan,Cabang,Jumlah,,Saldo",
    ]
    balance = 1_000_000
    for amount, description, marker in lines:
        balance += amount if marker == "CR" else -amount
        out.append(
            f'\'{day:%d/%m},\'{description},\'0000,"{amount:,}.00",{marker},"{balance:,}.00"'
        )
    out += ["", 'Saldo Awal,=,"1,000,000.00"', f'Saldo Akhir,=,"{balance:,}.00"']
    return ("\n".join(out) + "\n").encode()


STATEMENTS = Path(__file__).parent / "fixtures" / "statements"


@dataclasses.dataclass(frozen=True)
class Layout:
    """A statement fixture and what a chat test changes in it to make it today's: the
    credit to match (its date as the file writes it, its amount as written, ``en``
    ``190,034.00``, ``plain`` ``190034.00`` or ``id`` ``190.034,00``) and the period.
    ``bank`` and ``number``: the account the file states, as a trip would name it."""

    bank: str
    number: str
    day: dt.date
    written: str
    amounts: tuple[tuple[str, str], ...]
    period: str = "01/11/2026 - 30/11/2026"


_NOV_2 = dt.date(2026, 11, 2)  # the made-up fixtures' first credit: Rp 190.034 on 2 Nov
_EN = (("190,034.00", "en"), ("190034.00", "plain"))
# the layouts found for issue #22's "nothing yet" banks, and the real exports (under
# real/); tests/fixtures/statements/README.md says where each comes from
NEW_LAYOUTS: dict[str, Layout] = {
    "brimo.csv": Layout("BRI", "012301000456509", _NOV_2, "%Y-%m-%d", _EN),
    "bsi.csv": Layout("BSI", "7123456789", _NOV_2, "%d/%m/%Y", _EN),
    "permata.csv": Layout("Bank Permata", "4123456789", _NOV_2, "%d/%m/%Y", _EN),
    "cimb_niaga.csv": Layout("CIMB Niaga", "800123456789", _NOV_2, "%m/%d/%y", _EN),
    "cimb_niaga_bilingual.csv": Layout("CIMB Niaga", "800123456789", _NOV_2, "%d/%m", _EN),
    "real/klikbca_individual_2009.html": Layout(
        "BCA",
        "1234567890",
        dt.date(2009, 9, 30),
        "%d/%m",
        (("2,962,000.00", "en"),),
        "14/09/2009 - 14/10/2009",
    ),
    "real/mandiri_ib_2009.html": Layout(
        "Mandiri", "1234567890123", dt.date(2009, 8, 13), "%d/%m/%Y", (("111.111,00", "id"),)
    ),
    "real/mandiri_mcm_2019.csv": Layout(
        "Mandiri", "1030001026344", dt.date(2019, 1, 5), "%d/%m/%y", (("917,180.00", "en"),)
    ),
}


def _written(amount: int, style: str) -> str:
    if style == "plain":
        return f"{amount}.00"
    if style == "id":
        return f"{amount:,}".replace(",", ".") + ",00"
    return f"{amount:,}.00"


def statement_on(name: str, amount: int, day: dt.date | None = None) -> bytes:
    """The fixture ``name`` as exported on ``day`` (today): its credit to match is of
    ``amount`` that day, its period ends that day; every other byte is the fixture's."""
    day = day or today()
    layout = NEW_LAYOUTS[name]
    text = (STATEMENTS / name).read_text(encoding="latin-1")
    text = text.replace(layout.period, f"{day.replace(day=1):%d/%m/%Y} - {day:%d/%m/%Y}")
    for written, style in layout.amounts:
        text = text.replace(written, _written(amount, style))
    text = text.replace(layout.day.strftime(layout.written), day.strftime(layout.written))
    return text.encode("latin-1")


async def send_statement(
    h: Harness, data: bytes, mime: str = CSV, filename: str = "mutasi.csv", who: str = DEMO_PHONE
) -> str:
    """Send a document captioned /mutasi; returns the text(s) the sender got back."""
    media = h.fake.add_media(data, mime, filename=filename)
    sent = await h.send(
        simulate.media(
            who, "document", media, mime, caption="/mutasi", filename=filename, name="Tina"
        )
    )
    return "\n".join(_text_of(m) for m in sent)


async def bought(h: Harness, name: str, product: str = ROYCE) -> tuple[str, str, int]:
    """A buyer who joined and ordered one of ``product``: (phone, order code, amount)."""
    buyer = await joined(h, name)
    code = await order_code(h, buyer, product, "1")
    return buyer, code, (await the_order(h, code)).amount_due


def told(h: Harness, buyer: str) -> list[str]:
    return [str(m.get("text", {}).get("body", "")) for m in h.fake.sent_to(buyer)]


async def tina(h: Harness, text: str) -> list[str]:
    return await h.say(DEMO_PHONE, text, name="Tina")


async def run_actor(h: Harness) -> None:
    """Given the stub broker, when the scheduler dispatches, a real worker runs the actor."""
    broker = h.app[BROKER]
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        await jobs.dispatch_queued_broadcasts(h.db, h.app[ACTORS])
        # every message acknowledged (its work done), or QueueJoinTimeout: a thread
        # blocked for ever would also hold up the event loop's close after the test
        await asyncio.to_thread(broker.join, "broadcasts", fail_fast=True, timeout=60_000)
    finally:
        await asyncio.to_thread(worker.stop)


async def last_wrote_days_ago(h: Harness, name: str, days: int) -> None:
    import datetime as dt

    async with h.db.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == await user_named(session, name))
            .values(last_inbound_at=utcnow() - dt.timedelta(days=days))
        )


def templates_to(h: Harness, number: str) -> list[dict]:
    return [m["template"] for m in h.fake.sent_to(number) if m.get("type") == "template"]


async def the_order(h: Harness, code: str | None = None) -> Order:
    async with h.db.read() as session:
        stmt = select(Order)
        if code is not None:
            stmt = stmt.where(Order.code == code)
        return (await session.execute(stmt)).scalar_one()


async def order_code(h: Harness, buyer: str, product: str, qty: str) -> str:
    done = await order_one(h, buyer, product, qty)
    found = re.search(r"JP-[A-Z0-9]{5}", done)
    assert found, done
    return found.group(0)


async def pay(h: Harness, buyer: str) -> str:
    """The buyer sends a proof and the jastiper approves it; returns the caption the
    jastiper saw with the proof (it names the amount expected)."""
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    sent = h.fake.sent_to(DEMO_PHONE)
    caption = sent[-2]["image"]["caption"]
    approve = sent[-1]["interactive"]["action"]["buttons"][0]["reply"]
    await h.tap(DEMO_PHONE, approve["id"], "Setujui", name="Tina")
    return str(caption)


def exact(text: str) -> str:
    """The exact amount a payment message asks for (``tepat Rp 285.123``)."""
    found = re.search(r"(?:tepat|exactly) (Rp [\d.]+)", text)
    assert found, text
    return found.group(1)


def texts(h: Harness, to: str) -> list[str]:
    out = []
    for m in h.fake.sent_to(to):
        if m.get("type") == "text":
            out.append(m["text"]["body"])
        elif m.get("type") == "interactive":
            out.append(m["interactive"]["body"]["text"])
    return out


def batched(*bodies: dict[str, Any]) -> dict[str, Any]:
    """One webhook carrying several messages, as Meta may send them."""
    out = bodies[0]
    value = out["entry"][0]["changes"][0]["value"]
    for body in bodies[1:]:
        other = body["entry"][0]["changes"][0]["value"]
        value["messages"] += other["messages"]
        value["contacts"] += [c for c in other["contacts"] if c not in value["contacts"]]
    return out


async def photo(h: Harness, who: str, caption: str | None = None) -> list[str]:
    sent = await h.send(
        simulate.media(
            who,
            "image",
            h.fake.add_media(jpeg(), "image/jpeg"),
            "image/jpeg",
            caption=caption,
            name=h.names.get(who, "Tina"),
        )
    )
    return [_text_of(m) for m in sent]


async def english(h: Harness, who: str) -> None:
    await h.say(who, "LANGUAGE")
    await h.tap_title(who, "English")


async def second_trip(h: Harness, code: str = "SEOUL", title: str = "Jastip Seoul") -> None:
    async with h.db.transaction() as session:
        demo = (await session.execute(select(Trip).where(Trip.code == "DEMO"))).scalar_one()
        session.add(
            Trip(
                jastiper_id=demo.jastiper_id,
                code=code,
                title=title,
                destination="Seoul",
                status="open",
            )
        )
