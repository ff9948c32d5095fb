"""Order moves (``services/orders.py``): the rules both doors (chat, panel) rely on."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import orders
from services.errors import InvalidInput
from storage.models import Order, OutboxMessage


@pytest.mark.parametrize("blank", [None, "", "   "])
async def test_shipped_needs_a_tracking_number(
    session: AsyncSession, order: Order, blank: str | None
) -> None:
    """Without a tracking number the order stays where it was and the buyer hears nothing."""
    with pytest.raises(InvalidInput) as refused:
        await orders.advance(session, order, "shipped", tracking=blank)
    assert refused.value.message == "Isi nomor resi untuk status Dikirim."
    await session.commit()
    assert (await session.execute(select(Order.status))).scalar_one() == "paid"
    assert (await session.execute(select(OutboxMessage))).first() is None


async def test_shipped_keeps_the_tidied_tracking_number_and_tells_the_buyer(
    session: AsyncSession, order: Order
) -> None:
    """The number is stored tidied and cut to the limit; the buyer is told it."""
    long = "JNE  " + "9" * 200
    await orders.advance(session, order, "shipped", tracking=long)
    await session.flush()
    stored = (await session.execute(select(Order.status, Order.tracking_number))).one()
    assert stored.status == "shipped"
    assert stored.tracking_number == ("JNE " + "9" * 200)[: orders.TRACKING_MAX]
    await session.commit()  # replies are staged on the session and written on commit
    (told,) = (await session.execute(select(OutboxMessage.payload))).scalars()
    assert stored.tracking_number in told["text"]


async def test_a_tracking_number_on_another_move_is_ignored(
    session: AsyncSession, order: Order
) -> None:
    """Only a shipped order carries a tracking number."""
    await orders.advance(session, order, "bought", tracking="JNE1")
    await session.flush()
    stored = (await session.execute(select(Order.status, Order.tracking_number))).one()
    assert tuple(stored) == ("bought", None)
