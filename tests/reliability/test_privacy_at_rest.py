"""Issue #11, item 1: after a buyer joins, orders with a typed address and a delivery
status arrives, nothing the app wrote — the database (every row, and on SQLite the
file, its WAL and shared memory), the logs, the media folder — holds the buyer's number
in any form, the recipient's number they typed, the typed street or their name.

Run on SQLite and Postgres, through the real webhook, outbox and fake Graph API. The
simulated and fake wamids carry the number in base64, as Meta's do.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from bot import simulate
from bot.logs import QUIET, setup_logging
from storage.demo import DEMO_PHONE
from tests.conftest import Harness
from tests.journeys import joined, order_one
from tests.reliability.privacy import all_rows, base64_hides

NAME = "Sekar Ayu"
RECIPIENT_PHONE = "0813-7777-2468"  # typed at checkout
STREET = "Jl. Kenanga Wangi No. 17"


def _forms(number: str) -> list[bytes]:
    """Every plain way a number could be written down."""
    digits = re.sub(r"\D", "", number)
    international = "62" + digits[1:] if digits.startswith("0") else digits
    local = "0" + international[2:]
    return [f.encode() for f in (international, "+" + international, local, international[-9:])]


def _files(root: Path) -> bytes:
    out = bytearray()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out += path.read_bytes() + b"\x00"
    return bytes(out)


async def test_no_number_address_or_name_is_stored_in_plain_text(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    # the app's own logging, at its most talkative level, into a file
    log_file = tmp_path / "app.log"
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIET})
    stream = log_file.open("w")
    setup_logging("api", "DEBUG", stream=stream)
    try:
        await h.seed_demo()
        buyer = await joined(h, NAME)
        await h.say(buyer, "CARI Kit Kat")
        await h.tap_title(buyer, "Kit Kat Matcha")
        await h.tap_title(buyer, "Pesan")
        await h.tap_title(buyer, "2")
        (cart,) = await h.say(buyer, f"bungkus rapi ya, {STREET}")  # a note with the street
        assert "Subtotal" in cart
        await h.tap_title(buyer, "Checkout")
        await h.say(buyer, NAME)
        await h.say(buyer, RECIPIENT_PHONE)
        # one send fails and is retried: the outbox logs it, with Meta's error naming the
        # recipient as Meta's details sometimes do
        h.fake.fail_next(1, to=buyer, details=f"Recipient {buyer} ({STREET}) is busy")
        before = len(h.fake.sent_to(buyer))
        await h.say(buyer, STREET)
        for _ in range(100):  # the retry comes after its backoff (a second)
            if len(h.fake.sent_to(buyer)) > before:
                break
            await asyncio.sleep(0.05)
            await h.settle()
        await h.say(buyer, "Jakarta Selatan")
        (confirm,) = await h.say(buyer, "12120")
        assert STREET in confirm  # the buyer sees it back: it is in the reply we sent
        await h.tap_title(buyer, "Benar")
        (instructions,) = await h.tap_title(buyer, "Konfirmasi")
        assert "Pesanan *JP-" in instructions
        # Meta reports the reply delivered and read (each status names the recipient)
        sent = h.fake.sent_to(buyer)[-1]["wamid"]
        for state in ("delivered", "read"):
            resp = await h.post(simulate.status(sent, state, buyer))
            assert resp.status == 200
        await h.settle()
        # a question relayed to the jastiper, naming the street again
        (asked,) = await h.say(buyer, f"TANYA bisa antar langsung ke {STREET}?")
        assert any(STREET in t for t in h.fake.texts_to(DEMO_PHONE)), asked
        # a second order re-uses the saved address: the address round-trips sealed
        done = await order_one(h, buyer, "Royce Nama Chocolate", "1")
        assert "Pesanan *JP-" in done
        # paid, then not found: the refund goes to an e-wallet named by the same number
        code = done.split("Pesanan *", 1)[1].split("*", 1)[0]
        await h.say(DEMO_PHONE, f"/paid {code}", name="Tina")
        await h.say(DEMO_PHONE, f"/refund {code} 1", name="Tina")
        await h.tap_title(buyer, "Isi rekening refund")
        (thanks,) = await h.say(buyer, f"GoPay {RECIPIENT_PHONE} {NAME}")
        assert "akan dikirim ke GoPay" in thanks
        (owed,) = await h.say(DEMO_PHONE, "/refunds", name="Tina")
        assert NAME in owed
    finally:
        stream.close()
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, each in levels.items():
            logging.getLogger(name).setLevel(each)

    needles = [*_forms(buyer), *_forms(RECIPIENT_PHONE)]
    words = [b"Kenanga Wangi", NAME.encode()]
    where: dict[str, bytes] = {"database rows": await all_rows(h)}
    if h.db.is_sqlite:  # the file itself, its WAL and shared memory
        db_file = Path(h.settings.database_url.split("///", 1)[1])
        where["sqlite files"] = _files(db_file.parent)
    where["logs"] = log_file.read_bytes()
    assert where["logs"], "the test's log handler saw nothing: it would prove nothing"
    if h.settings.media_dir.exists():
        where["media"] = _files(h.settings.media_dir)
    for name, blob in where.items():
        plain = [n for n in needles + words if n in blob]
        assert not plain, f"{name} hold {plain} in plain text"
        hidden = base64_hides(blob, needles)
        assert not hidden, f"{name} hold the number in base64: {hidden}"
