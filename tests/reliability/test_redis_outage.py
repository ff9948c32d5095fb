"""Issue #11, item 4: with Redis gone mid-run, new and joined buyers are still answered,
a confirmed broadcast waits — and goes out, once to each buyer, when Redis is back.

The pace talks to the machine's real Redis through a TCP relay the test can cut and
restore, as a network failure or a Redis restart would (the real server stays up for
the other tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from bot.keys import OUTBOX
from bot.pace import SharedPace
from storage.demo import DEMO_PHONE
from tests.conftest import REDIS_URL, Harness, phone
from tests.journeys import BROADCAST_TEXT, joined, run_actor, tina


class Relay:
    """A TCP relay to Redis on a fixed local port that can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()
        self.links.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_buyers_are_answered_while_redis_is_down_and_the_broadcast_resumes(
    harness: Harness, redis_client: object
) -> None:
    import redis.asyncio as aioredis

    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
    relay = Relay((host, int(port)))
    await relay.start()
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{relay.port}/0",
        socket_connect_timeout=0.3,
        socket_timeout=0.3,
        retry_on_timeout=False,
    )
    h = harness
    outbox = h.app[OUTBOX]
    outbox.pace = SharedPace(1000, redis=client, cap=80, prefix=f"outage-{secrets.token_hex(3)}")
    try:
        await h.seed_demo()
        buyers = [await joined(h, f"B{i}") for i in range(3)]
        await tina(h, f"/broadcast DEMO {BROADCAST_TEXT}")
        await h.tap_title(DEMO_PHONE, "Kirim")

        await relay.cut()  # Redis is gone
        await run_actor(h)  # the fan-out needs only the database
        await outbox.flush()
        assert not any(BROADCAST_TEXT in t for b in buyers for t in h.fake.texts_to(b)), (
            "no broadcast message may go out without the number's shared cap"
        )
        # replies never wait for Redis: a new buyer joins, a joined one browses
        newcomer = phone()
        (welcome,) = await h.say(newcomer, "JOIN DEMO", name="Baru")
        assert "Selamat datang di *Jastip Tokyo Demo*" in welcome
        catalogue = await h.say(buyers[0], "KATALOG")
        assert catalogue and "halaman 1/2" in catalogue[0]

        await relay.start()  # Redis is back, on the same address
        for _ in range(100):
            await outbox.flush()
            if all(any(BROADCAST_TEXT in t for t in h.fake.texts_to(b)) for b in buyers):
                break
            await asyncio.sleep(0.1)
        for b in buyers:
            assert sum(BROADCAST_TEXT in t for t in h.fake.texts_to(b)) == 1, (
                "once each, once back"
            )
        assert not any(BROADCAST_TEXT in t for t in h.fake.texts_to(newcomer))  # joined after it
    finally:
        await client.aclose()
        with contextlib.suppress(Exception):
            await relay.cut()
