"""QRIS payloads: read a merchant's static QRIS and make the dynamic one for an amount.

Pure (no storage, no I/O). A QRIS is an EMVCo merchant-presented QR payload: a run of
TLV fields, each a two-digit tag, a two-digit length and the value (``000201`` is tag
00, length 02, value ``01``). What matters here:

- ``00`` payload format indicator, ``01``; it comes first;
- ``01`` point of initiation: ``11`` static (the payer types the amount), ``12``
  dynamic (one transaction, the amount is in the code);
- ``26``-``51`` merchant account templates (``ID.CO.QRIS.WWW`` and the acquirer's);
- ``53`` currency (``360``: Rupiah), ``54`` the amount, ``58`` country (``ID``),
  ``59`` merchant name, ``60`` merchant city;
- ``55`` tip or convenience indicator (``01`` ask the payer for a tip, ``02`` a fixed
  fee in ``56``, ``03`` a percentage in ``57``): a dynamic code for an exact amount
  drops them, or the payer's app would add to (or ask to add to) the amount the
  statement must show;
- ``63`` the CRC, last: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over everything
  before its value, ``6304`` included, as four upper-case hex digits.

See the EMVCo "QR Code Specification for Payment Systems: Merchant-Presented Mode" and
Bank Indonesia's QRIS standard (ASPI).
"""

from __future__ import annotations

import dataclasses
import enum

MAX_PAYLOAD = 512  # EMVCo: the whole payload is at most 512 characters
MAX_AMOUNT_CHARS = 13  # EMVCo: tag 54 holds at most 13 characters
TIP_TAGS = frozenset({"55", "56", "57"})
ACCOUNT_TAGS = frozenset(f"{n:02d}" for n in range(26, 52))
QRIS_DOMAIN = "ID.CO.QRIS.WWW"


class Problem(enum.StrEnum):
    """Why a text is not a static merchant QRIS we can use."""

    NOT_QRIS = "not_qris"  # not an EMVCo payload (a URL, a word), or not Indonesian
    BAD_CRC = "bad_crc"  # damaged or hand-edited: its checksum does not match
    DYNAMIC = "dynamic"  # already made for one transaction (tag 01 = 12, or an amount)


class QrisError(ValueError):
    """A text that is not a usable static QRIS, with the reason."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclasses.dataclass(frozen=True, slots=True)
class Merchant:
    """A validated static QRIS and what the jastiper is shown to confirm it."""

    payload: str
    name: str
    city: str


def is_caption(caption: str | None) -> bool:
    """A photo captioned ``/qris``: the jastiper's merchant QRIS sticker."""
    words = (caption or "").split()
    return bool(words) and words[0].lower() == "/qris"


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE of ``data`` (its UTF-8 bytes) as four upper-case hex digits."""
    crc = 0xFFFF
    for byte in data.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def fields(payload: str) -> list[tuple[str, str]]:
    """The top-level (tag, value) pairs in order.

    Raises:
        QrisError: ``NOT_QRIS`` when it does not split into whole TLV fields.
    """
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(payload):
        tag, size = payload[i : i + 2], payload[i + 2 : i + 4]
        if not (tag.isdigit() and size.isdigit() and tag.isascii() and size.isascii()):
            raise QrisError(Problem.NOT_QRIS)
        end = i + 4 + int(size)
        if end > len(payload):
            raise QrisError(Problem.NOT_QRIS)
        out.append((tag, payload[i + 4 : end]))
        i = end
    return out


def join(pairs: list[tuple[str, str]]) -> str:
    """TLV text of (tag, value) pairs (values of at most 99 characters)."""
    return "".join(f"{tag}{len(value):02d}{value}" for tag, value in pairs)


def with_crc(body: list[tuple[str, str]]) -> str:
    """The payload of ``body`` (without tag 63) closed by its CRC field."""
    text = join(body) + "6304"
    return text + crc16(text)


def crc_ok(payload: str) -> bool:
    """Whether the payload ends with a CRC field that matches what precedes it."""
    return (
        len(payload) > 8
        and payload[-8:-4] == "6304"
        and payload[-4:].upper() == crc16(payload[:-4])
    )


def read_static(text: str) -> Merchant:
    """Check a scanned or pasted text is a static merchant QRIS and read its merchant.

    Raises:
        QrisError: ``NOT_QRIS`` (not an EMVCo payload, no merchant account, not a
            Rupiah / Indonesian merchant), ``BAD_CRC``, or ``DYNAMIC``.
    """
    payload = text.strip()
    if not payload.startswith("000201") or len(payload) > MAX_PAYLOAD:
        raise QrisError(Problem.NOT_QRIS)
    pairs = fields(payload)
    if not pairs or pairs[-1][0] != "63" or len(pairs[-1][1]) != 4:
        raise QrisError(Problem.NOT_QRIS)
    tags = dict(pairs)
    if not ACCOUNT_TAGS & tags.keys() or tags.get("58") != "ID" or tags.get("53") != "360":
        raise QrisError(Problem.NOT_QRIS)
    if not crc_ok(payload):
        raise QrisError(Problem.BAD_CRC)
    if tags.get("01") == "12" or "54" in tags:
        raise QrisError(Problem.DYNAMIC)
    return Merchant(payload=payload, name=tags.get("59", "").strip(), city=tags.get("60", ""))


def dynamic(static_payload: str, amount: int) -> str:
    """The one-transaction QRIS for ``amount`` Rupiah from a merchant's static QRIS.

    Point of initiation becomes ``12``, tag 54 holds the amount (in tag order, before
    58), tip / fee tags 55-57 are dropped, and the CRC is computed anew.

    Raises:
        ValueError: the amount is not a positive whole number that fits tag 54.
        QrisError: the static payload is not one (see :func:`read_static`).
    """
    value = str(amount)
    if amount <= 0 or len(value) > MAX_AMOUNT_CHARS:
        raise ValueError(f"amount out of range: {amount}")
    merchant = read_static(static_payload)
    body: list[tuple[str, str]] = []
    placed = False
    for tag, field in fields(merchant.payload):
        if tag == "63" or tag in TIP_TAGS:
            continue
        if not placed and tag > "54":
            body.append(("54", value))
            placed = True
        body.append((tag, "12" if tag == "01" else field))
    if not placed:
        body.append(("54", value))
    if body[1][0] != "01":  # no point of initiation at all reads as static: say dynamic
        body.insert(1, ("01", "12"))
    return with_crc(body)
