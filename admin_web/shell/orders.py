"""What both panels show alike of one order: the order, its trip, the buyer's name, the
delivery address (unsealed for the page only), its proofs behind signed links (a reused
picture flagged), the reject form's reasons and a refusal above the forms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from admin_web.keys import CIPHER
from admin_web.shell.proofs import reasons
from admin_web.shell.render import buyer_name, translator
from storage.models import Order, PaymentProof, Trip, User


def order_values(
    request: web.Request,
    order: Order,
    trip: Trip,
    buyer: User | None,
    proofs: Sequence[PaymentProof],
    link: Callable[[web.Request, int], str],
    *,
    reused: dict[int, list[str]],
    error: str,
) -> dict[str, Any]:
    """The order page's values both panels share; ``link`` signs a proof's image link
    for the reader's panel, ``reused`` warns of a proof's picture sent for another order
    (``services.payments.reused``), ``error`` is a refusal shown above the forms."""
    cipher = request.config_dict[CIPHER]
    return {
        "order": order,
        "trip": trip,
        "buyer": buyer_name(buyer),
        "address": cipher.decrypt_json(order.address_enc) if order.address_enc else None,
        "proofs": [(p, link(request, p.id)) for p in proofs],
        "reasons": reasons(translator(request)),
        "reused": reused,
        "error": error,
    }
