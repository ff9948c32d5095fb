"""Joining a trip, read like the conversation it is, in Indonesian and English."""

from __future__ import annotations

from sqlalchemy import select, update

from storage.models import Participant, Trip, User
from tests.conftest import Harness, phone


async def dialog(h: Harness, number: str, turns: list[tuple[str, str]], **kw: object) -> None:
    """Each turn: what the buyer sends (text, or ``tap:<title>``) and a text the answer
    must contain."""
    for said, expected in turns:
        if said.startswith("tap:"):
            answers = await h.tap_title(number, said[4:])
        else:
            answers = await h.say(number, said, **kw)  # type: ignore[arg-type]
        joined = "\n".join(answers)
        assert expected in joined, f"after {said!r} expected {expected!r}, got {joined!r}"
    assert h.fake.rejected == [], "Meta would have rejected a send"


async def test_a_new_buyer_joins_names_themselves_and_consents(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await dialog(
        harness,
        buyer,
        [
            ("JOIN DEMO", "Selamat datang di *Jastip Tokyo Demo*"),
            ("tap:Pakai Sari", "Mau dapat kabar dari trip *Jastip Tokyo Demo*"),
            ("tap:Ya, kabari aku", "Kamu sudah terdaftar di *Jastip Tokyo Demo*"),
        ],
        name="Sari",
    )
    assert [t for t, _ in harness.last_choices(buyer)] == ["Katalog", "Pesanan saya", "Bantuan"]
    async with harness.db.read() as session:
        user = (await session.execute(select(User))).scalars().all()
        participant = (await session.execute(select(Participant))).scalar_one()
    buyer_user = next(u for u in user if u.display_name == "Sari")
    assert participant.user_id == buyer_user.id
    assert participant.consent_at is not None


async def test_a_typed_name_and_a_refusal_of_updates(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await dialog(
        harness,
        buyer,
        [
            ("gabung demo", "Jastip Tokyo Demo"),
            ("12345", "Nama itu kurang pas"),
            ("Budi Santoso", "Salam kenal, Budi Santoso!"),
            ("tap:Tidak usah", "kami hanya akan mengabari soal pesananmu"),
        ],
    )
    async with harness.db.read() as session:
        participant = (await session.execute(select(Participant))).scalar_one()
    assert participant.consent_at is None and participant.unsubscribed_at is not None


async def test_joining_twice_is_harmless_and_skips_the_questions(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await harness.say(buyer, "JOIN DEMO", name="Sari")
    await harness.tap_title(buyer, "Pakai Sari")
    await harness.tap_title(buyer, "Ya, kabari aku")
    answers = await harness.say(buyer, "join DEMO", name="Sari")
    assert len(answers) == 1
    assert "Kamu sudah terdaftar di *Jastip Tokyo Demo*" in answers[0]
    async with harness.db.read() as session:
        assert len((await session.execute(select(Participant))).scalars().all()) == 1


async def test_unknown_closed_and_empty_join_each_get_a_helpful_answer(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await dialog(
        harness,
        buyer,
        [
            ("JOIN", "Kirim JOIN diikuti kode trip"),
            ("JOIN NOPE42", "Kode trip *NOPE42* tidak ditemukan"),
            ("JOIN <script>", "tidak ditemukan"),
        ],
    )
    async with harness.db.transaction() as session:
        await session.execute(update(Trip).values(status="closed"))
    await dialog(harness, buyer, [("JOIN DEMO", "sudah ditutup")])
    async with harness.db.read() as session:
        assert (await session.execute(select(Participant))).scalars().all() == []


async def test_the_whole_join_in_english(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await dialog(
        harness,
        buyer,
        [
            ("LANGUAGE", "Choose a language"),
            ("tap:English", "Okay, I'll use English."),
            ("JOIN NOPE42", "We couldn't find trip code *NOPE42*"),
            ("JOIN DEMO", "Welcome to *Jastip Tokyo Demo*"),
            ("tap:Use Sari", "Would you like updates from *Jastip Tokyo Demo*"),
            ("tap:Yes, keep me posted", "You're in *Jastip Tokyo Demo*"),
        ],
        name="Sari",
    )
    assert [t for t, _ in harness.last_choices(buyer)] == ["Catalogue", "My orders", "Help"]
    await dialog(
        harness,
        buyer,
        [
            ("HELP", "Words you can send"),
            ("what?", "Sorry, I didn't get that"),
            ("STOP", "You won't receive trip news"),
            ("START", "You'll receive trip updates again"),
        ],
    )


async def test_global_words_work_in_the_middle_of_a_question(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await harness.say(buyer, "JOIN DEMO")  # now asked for a name
    answers = await harness.say(buyer, "MENU")
    assert "Menu *Jastip Tokyo Demo*" in answers[0]
    # the question is over: a name typed now is not taken as a name
    answers = await harness.say(buyer, "Budi")
    assert "belum paham" in answers[0]
    answers = await harness.say(buyer, "stop")
    assert "tidak akan menerima info" in answers[0]
    async with harness.db.read() as session:
        user = (await session.execute(select(User).where(User.display_name.is_(None)))).scalars()
        assert any(u.opted_out_at is not None for u in user)


async def test_a_sticker_is_answered_politely_and_the_question_kept(harness: Harness) -> None:
    from bot import simulate

    await harness.seed_demo()
    buyer = phone()
    await harness.say(buyer, "JOIN DEMO")
    sent = await harness.send(simulate.media(buyer, "sticker", "123", "image/webp"))
    assert "tidak bisa memproses kiriman seperti ini" in sent[0]["text"]["body"]
    answers = await harness.say(buyer, "Rina")
    assert "Salam kenal, Rina!" in answers[0]
