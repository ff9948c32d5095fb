"""A local HTTP server standing for a host the access token must never reach.

It answers every request with a small JPEG-looking body (so a client that did fetch from
it would get something to process) and records each request with its headers, so a test
can show that nothing, and certainly no ``Authorization`` header, arrived.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

BODY = b"\xff\xd8\xff\xe0 not the buyer's file"


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    """One request the foreign host received."""

    method: str
    path_qs: str
    authorization: str | None


class ForeignHost:
    """Serves :data:`BODY` on every path and records what came in.

    Attributes:
        requests: Every request received, in order.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[ForeignHost]:
        """Serve on a free port of 127.0.0.1 (another origin than any other server)."""
        host = cls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", host._handle)
        host._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await host._runner.setup()
        site = web.TCPSite(host._runner, "127.0.0.1", 0)
        await site.start()
        address, port = host._runner.addresses[0][:2]
        host.base_url = f"http://{address}:{port}"
        try:
            yield host
        finally:
            await host._runner.cleanup()

    @property
    def tokens_received(self) -> list[str]:
        """The ``Authorization`` headers that arrived (what a leak would look like)."""
        return [r.authorization for r in self.requests if r.authorization]

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(request.method, request.path_qs, request.headers.get("Authorization"))
        )
        return web.Response(body=BODY, content_type="image/jpeg")
