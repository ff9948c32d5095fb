"""QRIS payloads and pictures (issue #22), without the app: real static QRIS strings
published in public repositories (tests/fixtures/qris/samples.json names each one's
repository, path and commit) are read, turned into the dynamic QRIS for an exact amount,
drawn, and read back from the picture."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from services import qris, qris_image

SAMPLES = json.loads((Path(__file__).parent / "fixtures/qris/samples.json").read_text())["samples"]
STATIC = [s["payload"] for s in SAMPLES if s["kind"].startswith("static")]
DYNAMIC = [s["payload"] for s in SAMPLES if s["kind"] == "dynamic"]
TIP = next(s["payload"] for s in SAMPLES if s["kind"] == "static_tip")


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_the_crc_is_ccitt_false() -> None:
    assert qris.crc16("123456789") == "29B1"  # the check value of CRC-16/CCITT-FALSE
    for payload in STATIC + DYNAMIC:
        assert qris.crc_ok(payload), payload


@pytest.mark.parametrize("payload", STATIC)
def test_a_real_static_qris_is_read_with_its_merchant(payload: str) -> None:
    merchant = qris.read_static(payload)
    tags = dict(qris.fields(payload))
    assert merchant.payload == payload
    assert (merchant.name, merchant.city) == (tags["59"].strip(), tags["60"])
    assert qris.read_static(f"  {payload}\n").payload == payload  # pasted with spaces


def test_merchant_names_come_out_as_printed() -> None:
    names = {qris.read_static(p).name for p in STATIC}
    assert {"Lazis Amalia Astra PT Int", "FIFTYPLUSONE CULINARY", "BIOLBE"} <= names


@pytest.mark.parametrize("payload", STATIC)
def test_the_dynamic_qris_carries_the_exact_amount(payload: str) -> None:
    made = qris.dynamic(payload, 285_123)
    pairs = qris.fields(made)
    tags = dict(pairs)
    assert tags["01"] == "12" and tags["54"] == "285123"
    assert qris.crc_ok(made) and pairs[-1] == ("63", made[-4:])
    order = [tag for tag, _ in pairs]
    assert order.index("54") < order.index("58") and order[0] == "00"
    assert not {"55", "56", "57"} & set(order)
    # everything else is the merchant's, unchanged and in its order
    kept = [(t, v) for t, v in qris.fields(payload) if t not in ("01", "55", "56", "57", "63")]
    assert [(t, v) for t, v in pairs if t not in ("01", "54", "63")] == kept


def test_a_tip_prompt_is_dropped_for_a_fixed_amount() -> None:
    assert dict(qris.fields(TIP))["55"] == "01"  # the payer's app would ask for a tip
    made = qris.dynamic(TIP, 150_042)
    assert "55" not in dict(qris.fields(made)) and qris.crc_ok(made)


def test_a_fixed_or_percentage_fee_is_dropped_too() -> None:
    base = [(t, v) for t, v in qris.fields(STATIC[0]) if t != "63"]
    at = [t for t, _ in base].index("58")
    for extra in ([("55", "02"), ("56", "2500")], [("55", "03"), ("57", "0.7")]):
        with_fee = qris.with_crc(base[:at] + extra + base[at:])
        made = qris.dynamic(with_fee, 50_000)
        assert not {"55", "56", "57"} & set(dict(qris.fields(made))), made
        assert dict(qris.fields(made))["54"] == "50000" and qris.crc_ok(made)


def test_no_point_of_initiation_reads_as_static_and_becomes_dynamic() -> None:
    without = qris.with_crc([(t, v) for t, v in qris.fields(STATIC[1]) if t not in ("01", "63")])
    made = qris.dynamic(without, 10_001)
    assert qris.fields(made)[1] == ("01", "12")


@pytest.mark.parametrize("payload", DYNAMIC)
def test_an_already_dynamic_qris_is_refused(payload: str) -> None:
    with pytest.raises(qris.QrisError) as caught:
        qris.read_static(payload)
    assert caught.value.problem is qris.Problem.DYNAMIC


def test_a_damaged_qris_fails_its_crc() -> None:
    payload = STATIC[0]
    flipped = payload[:-1] + ("0" if payload[-1] != "0" else "1")
    renamed = payload.replace("Lazis", "Lazos")
    for bad in (flipped, renamed):
        with pytest.raises(qris.QrisError) as caught:
            qris.read_static(bad)
        assert caught.value.problem is qris.Problem.BAD_CRC


@pytest.mark.parametrize(
    "text",
    [
        "https://wa.me/6281100000001?text=JOIN%20DEMO",
        "hello",
        "000201",
        STATIC[0][:60],  # cut short: a field runs past the end
        # a Brazilian Pix code: EMVCo, valid CRC, but no Rupiah merchant
        qris.with_crc(
            [
                ("00", "01"),
                ("26", "0014br.gov.bcb.pix0111520258988355"),
                ("52", "0000"),
                ("53", "986"),
                ("58", "BR"),
                ("59", "LUCAS"),
                ("60", "CAMPINAS"),
            ]
        ),
    ],
)
def test_anything_else_is_not_a_qris(text: str) -> None:
    with pytest.raises(qris.QrisError) as caught:
        qris.read_static(text)
    assert caught.value.problem is qris.Problem.NOT_QRIS


def test_amounts_out_of_range_are_refused() -> None:
    for amount in (0, -5, 10**13):
        with pytest.raises(ValueError):
            qris.dynamic(STATIC[0], amount)


def test_the_caption_word() -> None:
    assert qris.is_caption("/qris") and qris.is_caption("/QRIS toko") and qris.is_caption(" /qris")
    assert not qris.is_caption("/qrisx") and not qris.is_caption(None) and not qris.is_caption("")


def test_the_drawn_dynamic_qris_reads_back_exactly() -> None:
    made = qris.dynamic(STATIC[2], 1_250_777)
    picture = qris_image.render(made)
    assert picture[:4] == b"\x89PNG"
    assert qris_image.decode(picture) == [made]


def test_a_photo_of_a_sticker_is_read() -> None:
    """The QR small and off-centre on a bigger, grey, JPEG-compressed photo."""
    sticker = Image.open(io.BytesIO(qris_image.render(STATIC[3]))).convert("RGB")
    photo = Image.new("RGB", (2400, 1800), (200, 196, 190))
    photo.paste(sticker.resize((700, 700)), (1300, 400))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=80)
    assert qris_image.decode(buf.getvalue()) == [STATIC[3]]


def test_a_photo_without_a_qr_reads_nothing() -> None:
    photo = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(photo).rectangle((100, 100, 300, 300), fill="black")
    assert qris_image.decode(png(photo)) == []


def test_what_is_no_picture_or_too_big_is_refused_before_decoding() -> None:
    with pytest.raises(qris_image.Unreadable) as caught:
        qris_image.decode(b"%PDF-1.7 not a picture")
    assert caught.value.reason == "not_image"
    with pytest.raises(qris_image.Unreadable) as caught:
        qris_image.decode(b"\x00" * (qris_image.MAX_BYTES + 1))
    assert caught.value.reason == "too_large"
    # a small file that claims 20,000 x 20,000 pixels (a decompression bomb)
    bomb = png(Image.new("1", (20_000, 20_000)))
    assert len(bomb) < qris_image.MAX_BYTES
    with pytest.raises(qris_image.Unreadable) as caught:
        qris_image.decode(bomb)
    assert caught.value.reason == "too_large"
