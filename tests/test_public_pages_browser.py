"""The public trip page in Chromium, as a buyer coming from Instagram sees it on a phone:
every text and button readable (WCAG AA contrast, computed from the colours the browser
actually paints), a tile opening its product, the order button, the join button kept on
screen below a long catalogue, the copy-link button (and the page without scripts).
Screenshots go to ``var/screenshots/public/`` (printed)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from storage.demo import DEMO_LINK, DEMO_PHONE
from tests.browser import (
    MODULE_LOOP,
    PHONE,
    Served,
    browser,
    open_page,
    screenshots,
    served,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = MODULE_LOOP
__all__ = ["browser", "served"]  # fixtures, used by name

# WCAG 2.x contrast of every element that shows text of its own (or is a button or a
# link), against the background actually behind it (the nearest painted ancestor, with
# semi-transparent layers blended); the elements under AA's 4.5:1 are returned.
CONTRAST = """
() => {
  const rgba = (s) => (s.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number)
    .concat([1]).slice(0, 4);
  const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3]))
    .concat([1]);
  function background(el) {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const bg = rgba(getComputedStyle(node).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  }
  const failures = [];
  let checked = 0;
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || style.display === "none" || !box.width) continue;
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText && !["A", "BUTTON"].includes(el.tagName)) continue;
    checked += 1;
    const bg = background(el);
    const fg = over(rgba(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) {
      failures.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" `
        + `${style.color} on rgb(${bg.slice(0, 3).map(Math.round)}): ${ratio.toFixed(2)}`);
    }
  }
  return { checked, failures };
}
"""


async def loaded(page: Page, selector: str) -> int:
    """The natural width of the image at ``selector`` once it has loaded (bounded wait)."""
    await page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth }",
        arg=selector,
    )
    return int(await page.locator(selector).evaluate("img => img.naturalWidth"))


async def readable(page: Page) -> int:
    """Fails with every text under 4.5:1; returns how many elements were checked."""
    found = await page.evaluate(CONTRAST)
    assert not found["failures"], "\n".join(found["failures"])
    return int(found["checked"])


async def test_the_trip_page_sells_on_a_phone(browser: Browser, served: Served) -> None:
    async with open_page(browser, served, viewport=PHONE, locale="id-ID") as page:
        context = page.context
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
        await page.goto("/t/DEMO")
        assert await readable(page) > 40  # the header, 12 tiles, buttons, footer
        # the check sees what it must: the old button, white on WhatsApp green, fails it
        old = await page.evaluate(
            """check => {
              const b = document.createElement("a");
              b.textContent = "Gabung";
              b.style.color = "#fff";
              b.style.background = "#25d366";
              document.body.appendChild(b);
              const found = eval(check)();
              b.remove();
              return found.failures;
            }""",
            CONTRAST,
        )
        assert len(old) == 1 and old[0].endswith(": 1.98"), old
        # below a long catalogue the join button is still on screen
        await page.locator(".card").nth(6).scroll_into_view_if_needed()
        bar = page.locator(".bar .join")
        box = await bar.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
        top = await page.locator("a.join").first.get_attribute("href")
        assert top and top.endswith("?text=JOIN%20DEMO")
        assert await bar.get_attribute("href") == top
        # the copy button (the script runs under the page's CSP) copies the short link
        copy = page.locator("button[data-copy]")
        assert await copy.is_visible()
        assert not await page.locator("[data-nojs]").is_visible()
        await copy.click()
        await page.wait_for_function(
            "() => document.querySelector('button[data-copy]').textContent.includes('disalin')"
        )
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert copied == await copy.get_attribute("data-copy")
        assert copied.startswith(served.url + "/s/")
        for path in await screenshots(page, "trip", module="public"):
            print(f"screenshot: {path}")

        # a tile opens its product: photo, price, stock left, the order button
        await page.locator(".card a", has_text="Royce Nama Chocolate").click()
        assert page.url.endswith("/t/DEMO/p/3"), page.url
        assert await page.locator("h1").inner_text() == "Royce Nama Chocolate"
        assert await page.locator(".product .price").inner_text() == "Rp 250.000"
        assert await page.locator(".product .stock").inner_text() == "Stok 10"
        await loaded(page, ".product img")
        order = page.locator(".bar .join")
        assert await order.inner_text() == "Pesan lewat WhatsApp"
        assert (await order.get_attribute("href") or "").endswith("?text=JOIN%20DEMO%203")
        assert await readable(page) > 5
        for path in await screenshots(page, "product", module="public"):
            print(f"screenshot: {path}")
        await page.goto("/t/DEMO/p/12?lang=en")  # sold out: the queue, still readable
        assert "Sold out" in await page.locator(".bar .join").inner_text()
        assert await readable(page) > 5
        await page.goto("/j/tina")
        assert await readable(page) > 3


async def test_without_scripts_the_link_says_long_press_to_copy(
    browser: Browser, served: Served
) -> None:
    async with open_page(browser, served, viewport=PHONE, java_script_enabled=False) as page:
        await page.goto("/t/DEMO")
        assert not await page.locator("button[data-copy]").is_visible()
        hint = page.locator("[data-nojs]")
        assert await hint.is_visible() and "tekan lama" in await hint.inner_text()
        assert await page.locator(".share a").inner_text() == f"{served.url}/s/{DEMO_LINK}"


async def test_the_jastipers_page_shows_what_she_set_in_chat(
    browser: Browser, served: Served
) -> None:
    chat = served.chat()
    await chat.say(DEMO_PHONE, "/profile bio Jastip Jepang & Korea tiap bulan", name="Tina")
    await chat.say(DEMO_PHONE, "/profile link @tinajastip")
    buf = io.BytesIO()
    Image.new("RGB", (600, 600), "#c2185b").save(buf, "JPEG")
    (saved,) = await chat.send_photo(DEMO_PHONE, buf.getvalue(), caption="/profile")
    assert "Foto profil tersimpan" in saved
    async with open_page(browser, served, viewport=PHONE) as page:
        await page.goto("/j/tina")
        assert await loaded(page, "img.avatar") == 400
        assert await page.locator(".bio").inner_text() == "Jastip Jepang & Korea tiap bulan"
        link = page.locator(".links a")
        assert await link.get_attribute("href") == "https://instagram.com/tinajastip"
        assert await readable(page) > 5
        for path in await screenshots(page, "jastiper", module="public"):
            print(f"screenshot: {path}")
