"""The trip's share card: the 1200×630 image link previews show (``og:image`` of the trip
page and of ``/s/<slug>`` answered to a link-preview crawler). Title, jastiper, destination
and closing date on the left, up to three product photos with their Rupiah prices on the
right. Pillow's built-in scalable font, so nothing is downloaded; drawn off the event loop
by the caller (``asyncio.to_thread``)."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 630
GREEN = (7, 94, 84)  # WhatsApp's dark teal: white text on it is 8.6:1
CREAM = (247, 243, 233)
INK = (32, 33, 36)
TILE = 300


@dataclasses.dataclass(frozen=True, slots=True)
class CardProduct:
    name: str
    price: str  # already formatted, e.g. "Rp 185.000"
    photo: bytes | None  # a JPEG rendition, or None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> tuple[str, object]:
    """``text`` in the largest font from ``size`` down that fits ``width``, else cut."""
    smallest = min(size, 22)
    for each in range(size, smallest - 1, -2):
        font = _font(each)
        if draw.textlength(text, font=font) <= width:
            return text, font
    font = _font(smallest)
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…", font


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: object, width: int, lines: int) -> list[str]:
    words, out, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width:  # type: ignore[arg-type]
            line = trial
            continue
        out.append(line)
        line = word
        if len(out) == lines:
            break
    if len(out) < lines and line:
        out.append(line)
    if len(out) == lines and " ".join(out) != text:
        out[-1] = out[-1].rstrip(".,") + "…"
    return [x for x in out if x]


def render(
    *, title: str, jastiper: str, destination: str, closes: str, products: list[CardProduct]
) -> bytes:
    """The card as PNG bytes."""
    card = Image.new("RGB", (WIDTH, HEIGHT), CREAM)
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, 560, HEIGHT), fill=GREEN)
    title_font = _font(60)
    y = 70
    for line in _wrap(draw, title, title_font, 480, 3):
        draw.text((48, y), line, font=title_font, fill="white")
        y += 74
    y += 20
    for text, size in ((destination, 34), (jastiper, 34), (closes, 30)):
        line, font = _fit(draw, text, size, 480)
        draw.text((48, y), line, font=font, fill=(225, 245, 238))  # type: ignore[arg-type]
        y += size + 22
    draw.text((48, HEIGHT - 70), "Jastipin", font=_font(36), fill="white")

    shown = products[:3]
    positions = [(600, 24), (900, 24), (600, 330)] if len(shown) == 3 else [(600, 24), (900, 24)]
    if len(shown) == 1:
        positions = [(720, 150)]
    for (x, y0), product in zip(positions, shown, strict=False):
        box = (x, y0, x + TILE - 12, y0 + TILE - 100)
        if product.photo:
            try:
                with Image.open(io.BytesIO(product.photo)) as photo:
                    tile = photo.convert("RGB")
                    tile.thumbnail((box[2] - box[0], box[3] - box[1]))
                    card.paste(tile, (x + (box[2] - box[0] - tile.width) // 2, y0))
            except OSError:
                draw.rectangle(box, fill=(220, 214, 200))
        else:
            draw.rectangle(box, fill=(220, 214, 200))
        name, font = _fit(draw, product.name, 26, TILE - 12)
        draw.text((x, box[3] + 6), name, font=font, fill=INK)  # type: ignore[arg-type]
        draw.text((x, box[3] + 36), product.price, font=_font(26), fill=GREEN)
    out = io.BytesIO()
    card.save(out, format="PNG", optimize=True)
    return out.getvalue()
