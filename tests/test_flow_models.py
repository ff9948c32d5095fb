"""A conversation is attached to its flow's ``transitions`` machine for one update and
detached afterwards: the machines are built once per process, so a model left on one
is kept for the life of the process and makes every later update slower."""

from __future__ import annotations

from bot.router import FLOWS
from storage.demo import DEMO_PHONE
from tests.conftest import Harness, phone


def models_left() -> dict[str, int]:
    return {name: len(flow.machine.models) for name, (flow, _h) in FLOWS.items()}


async def test_switching_flows_back_and_forth_leaves_no_model_on_any_machine(
    harness: Harness,
) -> None:
    """A buyer hops menu → join → shop → orders → menu and a jastiper types commands
    (the jastiper flow) between menu words: after each update the buyer and the jastiper
    still get their answers and no machine holds a model."""
    h = harness
    await h.seed_demo()
    buyer = phone()
    steps: list[tuple[str, str, str]] = [
        (buyer, "JOIN DEMO", "Boleh tahu namamu?"),
        (buyer, "KATALOG", "halaman 1/2"),
        (buyer, "PESANAN", "belum punya pesanan"),
        (buyer, "MENU", "Mau lihat apa?"),
        (buyer, "CARI matcha", "Hasil pencarian"),
        (buyer, "BANTUAN", "KATALOG — lihat produk"),
        (DEMO_PHONE, "/help", "Perintah jastiper"),
        (DEMO_PHONE, "MENU", "Menu jastiper"),
        (DEMO_PHONE, "/products DEMO", "#2 Kit Kat Matcha"),
        (buyer, "KATALOG", "halaman 1/2"),
    ]
    for _round in range(3):
        for who, text, expect in steps:
            answers = await h.say(who, text, name="Sari" if who == buyer else "Tina")
            assert answers, f"no answer to {text!r}"
            assert expect in "\n".join(answers), f"{text!r} answered {answers}"
            assert models_left() == dict.fromkeys(FLOWS, 0), f"after {text!r}"
    # a tap lands in the flow its payload names, whatever the conversation's flow is now:
    # the join offer's button, tapped after the buyer went on to other flows
    offer = next(m for m in h.fake.sent_to(buyer) if "Pakai Sari" in str(m))
    (use_name,) = [b["reply"]["id"] for b in offer["interactive"]["action"]["buttons"][:1]]
    answers = await h.tap(buyer, use_name, "Pakai Sari", name="Sari")
    assert any("Ya, kabari aku" in str(m) for m in h.fake.sent_to(buyer)[-len(answers) :])
    assert models_left() == dict.fromkeys(FLOWS, 0)
