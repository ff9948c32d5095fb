"""The real processes, as an operator starts them: migrate, seed, serve; then Meta calls."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from bot import simulate
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_ID, VERIFY_TOKEN, phone
from tests.fakes.graph_api import FakeGraphAPI

JASTIPIN = str(Path(sys.executable).parent / "jastipin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_served_app_answers_a_signed_join_through_the_graph_api(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WA_", "PII_"))},
        "DATABASE_URL": database_url,
        "JASTIPIN_DATA_DIR": str(tmp_path),
        "PORT": str(port),
        "WA_ACCESS_TOKEN": ACCESS_TOKEN,
        "WA_APP_SECRET": APP_SECRET,
        "WA_VERIFY_TOKEN": VERIFY_TOKEN,
        "WA_PHONE_ID": PHONE_ID,
        "WA_API_BASE": fake_graph.base_url,
        "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    for argv in (["db", "upgrade"], ["demo"]):
        done = await asyncio.to_thread(
            subprocess.run,
            [JASTIPIN, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    log = (tmp_path / "serve.log").open("w")
    proc = await asyncio.create_subprocess_exec(JASTIPIN, "serve", env=env, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError((tmp_path / "serve.log").read_text())
            buyer = phone()
            raw = simulate.encode(simulate.text(buyer, "JOIN DEMO", name="Sari"))
            resp = await client.post(
                "/api/webhooks/whatsapp",
                content=raw,
                headers={"X-Hub-Signature-256": simulate.sign(raw, APP_SECRET)},
            )
            assert resp.status_code == 200
            await fake_graph.wait_for(1, timeout=15, to=buyer)
            assert "Jastip Tokyo Demo" in fake_graph.texts_to(buyer)[0]
            health = (await client.get("/health")).json()
            assert health["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
            metrics = (await client.get("/metrics")).text
            assert "jastipin_webhook_units_total" in metrics
            page = await client.get("/t/DEMO")
            assert page.status_code == 200
            assert "Jastip Tokyo Demo" in page.text and "wa.me" in page.text
            assert "JOIN%20DEMO" in page.text
            # `jastipin demo` gave Tina her page, the trip its short link, products photos
            short = await client.get("/s/demo")
            assert short.status_code == 302 and "JOIN%20DEMO" in short.headers["Location"]
            tina = await client.get("/j/tina")
            assert tina.status_code == 200 and "Jastip Tokyo Demo" in tina.text
            thumb = re.search(r'src="(/p/\d+/thumb\.jpg\?v=\w+)"', page.text)
            assert thumb is not None, "the demo products have photos"
            image = await client.get(thumb.group(1))
            assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        log.close()
    served_log = (tmp_path / "serve.log").read_text()
    assert buyer not in served_log, "a phone number reached the logs"
