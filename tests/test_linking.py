"""One resident on Telegram and Zalo: a code shown in one chat and typed in the other makes
them one person (one subscription, one vote per poll, each draft once, one pseudonym)."""

from __future__ import annotations

import asyncio
import csv
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy import text as text_sql

from bot.cli.main import main
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from handlers.events import Incoming, Kind
from handlers.i18n import translator
from storage.db import open_database
from storage.drafts import broadcast
from storage.linking import GUESS_LIMIT
from storage.models import (
    Comment,
    Delivery,
    Draft,
    LinkCode,
    LinkGuess,
    Person,
    PollOption,
    Resident,
    Vote,
    draft_dedup_key,
    utcnow,
)
from storage.queries import cast_vote, get_resident
from tests.channels.drivers.base import WAIT
from tests.chat import BA_DINH, CAM_TU, button_for, joined, labels, make_draft, scalar_count
from tests.sending.test_delivery import ScriptedChannel

TELEGRAM = ("telegram", "1")
ZALO = ("zalo", "z1")


def text(who: tuple[str, str], body: str) -> Incoming:
    return Incoming(who[0], who[1], Kind.TEXT, text=body)


def press(who: tuple[str, str], choice: str) -> Incoming:
    return Incoming(who[0], who[1], Kind.CHOICE, choice=choice)


async def subscribe(service, who: tuple[str, str], commune: int) -> None:
    await service.handle(press(who, "agree:en"))
    await service.handle(press(who, f"commune:{commune}"))


async def code_shown(service, who: tuple[str, str] = TELEGRAM) -> str:
    shown = joined(await service.handle(text(who, "/link")))
    found = re.search(r"code: ([A-Z0-9]{6})\n", shown)
    assert found, shown
    return found.group(1)


async def linked(service) -> str:
    """Telegram (Cẩm Tú) shows a code, Zalo (Ba Đình) types it; returns Zalo's answer."""
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    return joined(await service.handle(text(ZALO, code)))


async def identity(sessionmaker, who: tuple[str, str]) -> Resident | None:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Resident).where(Resident.channel == who[0], Resident.platform_id == who[1])
        )


async def both(sessionmaker) -> tuple[Resident, Resident]:
    one, other = await identity(sessionmaker, TELEGRAM), await identity(sessionmaker, ZALO)
    assert one is not None and other is not None
    return one, other


async def test_the_chat_typing_the_code_joins_the_person_and_its_commune(
    service, sessionmaker
):
    answer = await linked(service)
    assert "Linked" in answer
    assert "Xã Cẩm Tú" in answer  # the commune of the chat that showed the code
    telegram, zalo = await both(sessionmaker)
    assert telegram.person_id == zalo.person_id
    assert zalo.commune_code == CAM_TU
    assert await scalar_count(sessionmaker, Person) == 1


async def test_one_subscription_change_commune_stop_and_start_on_either(service, sessionmaker):
    await linked(service)
    await service.handle(press(ZALO, f"commune:{BA_DINH}"))
    telegram, zalo = await both(sessionmaker)
    assert (telegram.commune_code, zalo.commune_code) == (BA_DINH, BA_DINH)

    await service.handle(text(TELEGRAM, "STOP"))
    telegram, zalo = await both(sessionmaker)
    assert (telegram.subscribed, zalo.subscribed) == (False, False)

    await service.handle(text(ZALO, "/start"))
    telegram, zalo = await both(sessionmaker)
    assert (telegram.subscribed, zalo.subscribed) == (True, True)

    await service.handle(press(ZALO, "lang:vi"))
    telegram, _ = await both(sessionmaker)
    assert telegram.language == "vi"


async def test_one_vote_per_poll_the_latest_from_either_chat(service, sessionmaker):
    draft = await make_draft(sessionmaker)
    await linked(service)
    yes, no = draft.options
    await service.handle(press(TELEGRAM, f"vote:{yes.id}"))
    answer = joined(await service.handle(press(ZALO, f"vote:{no.id}")))
    assert "from “Yes” to “No”" in answer
    async with sessionmaker() as session:
        votes = (await session.scalars(select(Vote))).all()
    _, zalo = await both(sessionmaker)
    assert [(v.option_id, v.resident_id) for v in votes] == [(no.id, zalo.id)]


async def test_two_chats_voting_at_the_same_moment_leave_one_vote(
    service, sessionmaker, database_url
):
    if database_url.startswith("sqlite"):
        pytest.skip("one SQLite connection per process: a second vote waits for the first")
    draft = await make_draft(sessionmaker)
    await linked(service)
    yes, no = draft.options
    async with sessionmaker() as first, first.begin():
        telegram = await get_resident(first, "telegram", "1")  # as a turn reads it
        assert telegram is not None
        await cast_vote(first, await first.get(Draft, draft.id),
                        await first.get(PollOption, yes.id), telegram, utcnow())
        # Zalo's vote, while Telegram's is not committed yet: it must wait for it
        second = asyncio.create_task(service.handle(press(ZALO, f"vote:{no.id}")))
        async with asyncio.timeout(WAIT):
            while not second.done() and not await waiting_for_a_lock(sessionmaker):
                await asyncio.sleep(0.01)
    assert "from “Yes” to “No”" in joined(await second)
    async with sessionmaker() as session:
        votes = (await session.scalars(select(Vote))).all()
    _, zalo = await both(sessionmaker)
    assert [(v.option_id, v.resident_id) for v in votes] == [(no.id, zalo.id)]


async def waiting_for_a_lock(sessionmaker) -> bool:
    async with sessionmaker() as session:
        return bool(await session.scalar(text_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()")))


async def test_votes_cast_on_both_chats_before_linking_keep_the_latest(service, sessionmaker):
    draft = await make_draft(sessionmaker, communes=(CAM_TU, BA_DINH))
    yes, no = draft.options
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    await service.handle(press(TELEGRAM, f"vote:{yes.id}"))
    await service.handle(press(ZALO, f"vote:{no.id}"))  # the later one
    code = await code_shown(service)
    await service.handle(text(ZALO, code))
    async with sessionmaker() as session:
        assert (await session.scalars(select(Vote.option_id))).all() == [no.id]


async def test_the_vote_cast_on_one_chat_is_marked_on_the_other(service, sessionmaker):
    draft = await make_draft(sessionmaker)
    await linked(service)
    await service.handle(press(TELEGRAM, f"vote:{draft.options[1].id}"))
    shown = labels(await service.handle(text(ZALO, "/drafts")))
    assert "✅ No" in shown and "🗳 Yes" in shown


async def test_a_broadcast_queues_one_message_per_person_on_the_chat_used_last(
    service, sessionmaker
):
    await linked(service)
    await subscribe(service, ("telegram", "2"), CAM_TU)  # someone else
    telegram, zalo = await both(sessionmaker)
    now = utcnow()
    first, second = await make_draft(sessionmaker, "First"), await make_draft(sessionmaker)
    for draft, (earlier, later) in ((first, (telegram, zalo)), (second, (zalo, telegram))):
        async with sessionmaker() as session:
            await session.execute(update(Resident).where(Resident.id == earlier.id)
                                  .values(last_seen_at=now - timedelta(hours=2)))
            await session.execute(update(Resident).where(Resident.id == later.id)
                                  .values(last_seen_at=now - timedelta(hours=1)))
            await broadcast(session, await session.get(type(draft), draft.id), now)
            await broadcast(session, await session.get(type(draft), draft.id), now)  # again
            await session.commit()
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(Delivery.draft_id, Delivery.channel, Delivery.dedup_key)
            .join(Resident, Resident.id == Delivery.resident_id)
            .where(Resident.person_id == telegram.person_id)
            .order_by(Delivery.draft_id)
        )).all()
    assert [(d, c) for d, c, _ in rows] == [(first.id, "zalo"), (second.id, "telegram")]
    assert rows[0][2] == draft_dedup_key(first.id, telegram.person_id)
    assert await scalar_count(sessionmaker, Delivery) == 4  # and one each for the other


async def test_a_draft_queued_to_both_chats_before_linking_goes_once(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, CAM_TU)
    draft = await make_draft(sessionmaker)
    async with sessionmaker() as session:
        await broadcast(session, await session.get(type(draft), draft.id), utcnow())
        await session.commit()
    await service.handle(text(ZALO, await code_shown(service)))
    async with sessionmaker() as session:
        statuses = (await session.scalars(select(Delivery.status).order_by(Delivery.id))).all()
    assert statuses == ["pending", "skipped"]


@pytest.mark.parametrize("received_on", ["the chat typing the code", "the chat showing it"])
async def test_a_draft_one_chat_received_is_not_sent_to_the_other_after_linking(
    service, sessionmaker, received_on
):
    """Both chats had a copy queued; one was sent before the link (the other channel was
    slower): after the link the other copy is not sent, whichever chat linked."""
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, CAM_TU)
    draft = await make_draft(sessionmaker)
    async with sessionmaker() as session:
        await broadcast(session, await session.get(type(draft), draft.id), utcnow())
        await session.commit()
    channels = {"telegram": ScriptedChannel(), "zalo": ScriptedChannel()}
    first, showing, typing = (
        ("zalo", TELEGRAM, ZALO) if received_on == "the chat typing the code"
        else ("telegram", TELEGRAM, ZALO))
    assert (await DeliveryWorker(sessionmaker, {first: channels[first]}).run_once()).sent == 1
    answer = joined(await service.handle(text(typing, await code_shown(service, showing))))
    assert "Linked" in answer
    await DeliveryWorker(sessionmaker, channels).run_once()
    copies = [user for channel in channels.values() for user, message in channel.sent
              if getattr(message, "draft_id", None) == draft.id]
    assert len(copies) == 1, copies
    async with sessionmaker() as session:
        statuses = sorted((await session.scalars(select(Delivery.status))).all())
    assert statuses == ["sent", "skipped"]


async def test_one_pseudonym_in_the_export(service, sessionmaker, database_url, monkeypatch,
                                           tmp_path):
    draft = await make_draft(sessionmaker)
    await linked(service)
    await subscribe(service, ("telegram", "2"), CAM_TU)
    for who, words in ((TELEGRAM, "From Telegram"), (ZALO, "From Zalo"),
                       (("telegram", "2"), "Someone else")):
        await service.handle(press(who, f"comment:{draft.id}"))
        await service.handle(text(who, words))
    for name, value in {"YKIEN_DATABASE_URL": database_url, "YKIEN_LANGUAGE": "en",
                        "YKIEN_TELEGRAM_TOKEN": "", "YKIEN_PSEUDONYM_KEY": "key"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "comments.csv"
    argv = ["export", "--draft", str(draft.id), "--out", str(out)]
    assert await asyncio.wait_for(asyncio.to_thread(main, argv), 60) == 0
    with out.open(encoding="utf-8-sig", newline="") as file:
        who = {row["Comment"]: row["Resident"] for row in csv.DictReader(file)}
    assert who["From Telegram"] == who["From Zalo"] != who["Someone else"]


async def test_my_comments_shows_the_comments_of_every_chat(service, sessionmaker):
    draft = await make_draft(sessionmaker)
    await linked(service)
    for who, words in ((TELEGRAM, "From Telegram"), (ZALO, "From Zalo")):
        await service.handle(press(who, f"comment:{draft.id}"))
        await service.handle(text(who, words))
    mine = joined(await service.handle(text(TELEGRAM, "/mycomments")))
    assert "From Telegram" in mine and "From Zalo" in mine
    assert "2 comments" in mine


@pytest.mark.parametrize("erased_on", [TELEGRAM, ZALO])
async def test_delete_on_either_chat_erases_both(service, sessionmaker, erased_on):
    draft = await make_draft(sessionmaker)
    await linked(service)
    other = ZALO if erased_on == TELEGRAM else TELEGRAM
    await service.handle(press(other, f"comment:{draft.id}"))
    await service.handle(text(other, "Kept without a name"))
    await service.handle(press(other, f"vote:{draft.options[0].id}"))
    assert "wrong" in joined(await service.handle(text(other, "AB2345")))
    assert await scalar_count(sessionmaker, LinkGuess) == 1
    asked = await service.handle(text(erased_on, "/delete"))
    assert "every linked chat app" in joined(asked)
    answer = joined(await service.handle(press(erased_on, button_for(asked, "Yes, delete"))))
    assert "deleted" in answer
    assert await scalar_count(sessionmaker, Resident) == 0
    assert await scalar_count(sessionmaker, Person) == 0
    assert await scalar_count(sessionmaker, LinkGuess) == 0
    assert await scalar_count(sessionmaker, Comment, Comment.resident_id.is_(None)) == 1
    assert await scalar_count(sessionmaker, Vote) == 0  # the poll is open: they may vote again


@pytest.mark.parametrize("linked_by", [TELEGRAM, ZALO])
async def test_a_delete_question_asked_before_a_link_erases_nothing_it_did_not_name(
    service, sessionmaker, linked_by
):
    """Zalo is asked "Delete your data?" while alone; then the chats are linked; the old
    "Yes, delete" asks again, naming the linked chat, instead of erasing it unannounced."""
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    asked = await service.handle(text(ZALO, "/delete"))
    assert "every linked chat app" not in joined(asked)
    stale_yes = button_for(asked, "Yes, delete")
    other = TELEGRAM if linked_by == ZALO else ZALO
    assert "Linked" in joined(await service.handle(
        text(linked_by, await code_shown(service, other))))

    again = await service.handle(press(ZALO, stale_yes))
    assert "has been deleted" not in joined(again)
    assert "every linked chat app" in joined(again)  # the question, as it is now
    assert await scalar_count(sessionmaker, Resident) == 2
    assert "has been deleted" in joined(
        await service.handle(press(ZALO, button_for(again, "Yes, delete"))))
    assert await scalar_count(sessionmaker, Resident) == 0
    assert await scalar_count(sessionmaker, Person) == 0


async def test_a_wrong_code_links_nothing(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    wrong = "AB2345" if code != "AB2345" else "AB2346"
    assert "wrong" in joined(await service.handle(text(ZALO, f"/link {wrong}")))
    telegram, zalo = await both(sessionmaker)
    assert telegram.person_id != zalo.person_id


async def test_an_expired_code_says_so(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    async with sessionmaker() as session:
        await session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert "expired" in joined(await service.handle(text(ZALO, code)))
    telegram, zalo = await both(sessionmaker)
    assert telegram.person_id != zalo.person_id


async def test_a_used_code_typed_again_is_wrong(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    await service.handle(text(ZALO, code))
    other = ("zalo", "z2")
    await subscribe(service, other, BA_DINH)
    assert "wrong" in joined(await service.handle(text(other, code)))
    telegram, second = await identity(sessionmaker, TELEGRAM), await identity(sessionmaker, other)
    assert telegram and second and telegram.person_id != second.person_id


async def test_a_code_typed_in_the_chat_that_showed_it(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    assert "other chat app" in joined(await service.handle(text(TELEGRAM, code)))
    # still valid for the other chat
    assert "Linked" in joined(await service.handle(text(ZALO, code)))


async def test_linking_a_pair_already_linked_says_so(service, sessionmaker):
    await linked(service)
    code = await code_shown(service, ZALO)
    assert "already linked" in joined(await service.handle(text(TELEGRAM, code)))
    assert await scalar_count(sessionmaker, Person) == 1


async def test_guessing_is_limited(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    code = await code_shown(service)
    wrong = [guess for guess in ("AB2345", "AB2346", "AB2347", "AB2348", "AB2349", "AB2352")
             if guess != code]
    for guess in wrong[:GUESS_LIMIT]:
        assert "wrong" in joined(await service.handle(text(ZALO, guess)))
    assert "Too many wrong codes" in joined(await service.handle(text(ZALO, code)))
    telegram, zalo = await both(sessionmaker)
    assert telegram.person_id != zalo.person_id
    # An hour later the guesses no longer count.
    async with sessionmaker() as session:
        await session.execute(update(LinkGuess).where(LinkGuess.person_id == zalo.person_id)
                              .values(created_at=utcnow() - timedelta(minutes=61)))
        await session.commit()
    assert "Linked" in joined(await service.handle(text(ZALO, code)))
    # Guesses that no longer count are not kept (the next wrong one clears them).
    assert "wrong" in joined(await service.handle(text(ZALO, wrong[0])))
    assert await scalar_count(sessionmaker, LinkGuess) == 1


async def test_both_chats_must_consent_first(service, sessionmaker):
    stranger = ("zalo", "new")
    # Before consent the bot speaks Vietnamese (nobody has chosen a language yet).
    first_agree = translator("vi")(
        "To link your chats, first agree to the privacy notice below, then type /link again."
    )
    answer = joined(await service.handle(text(stranger, "/link")))
    assert first_agree in answer and "Tôi đồng ý" not in answer  # buttons carry the labels
    assert await scalar_count(sessionmaker, LinkCode) == 0
    await subscribe(service, TELEGRAM, CAM_TU)
    code = await code_shown(service)
    assert first_agree in joined(await service.handle(text(stranger, code)))
    assert await identity(sessionmaker, stranger) is None  # nothing stored
    assert await scalar_count(sessionmaker, LinkCode) == 1  # the code is not used up
    await subscribe(service, stranger, BA_DINH)
    assert "Linked" in joined(await service.handle(text(stranger, code)))


async def test_a_code_typed_while_a_comment_is_awaited_is_the_comment(service, sessionmaker):
    draft = await make_draft(sessionmaker)
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, CAM_TU)
    code = await code_shown(service)
    await service.handle(press(ZALO, f"comment:{draft.id}"))
    assert "Received" in joined(await service.handle(text(ZALO, code)))
    await service.handle(press(ZALO, f"comment:{draft.id}"))
    assert "Received" in joined(await service.handle(text(ZALO, "123456")))
    async with sessionmaker() as session:
        assert (await session.scalars(select(Comment.text).order_by(Comment.id))).all() == [
            code, "123456"]
    telegram, zalo = await both(sessionmaker)
    assert telegram.person_id != zalo.person_id
    # Once no comment is awaited, the same code links.
    assert "Linked" in joined(await service.handle(text(ZALO, code)))


async def test_a_number_is_never_taken_for_a_code(service, sessionmaker):
    await make_draft(sessionmaker)
    await subscribe(service, ZALO, CAM_TU)
    answer = joined(await service.handle(text(ZALO, "123456")))
    assert "Which draft" in answer and "code" not in answer


async def test_the_vietnamese_keyword_with_or_without_accents(service, sessionmaker):
    await subscribe(service, TELEGRAM, CAM_TU)
    await subscribe(service, ZALO, BA_DINH)
    shown = joined(await service.handle(text(TELEGRAM, "lien ket")))
    code = re.search(r"code: ([A-Z0-9]{6})\n", shown)
    assert code
    answer = joined(await service.handle(text(ZALO, f"Liên kết {code.group(1).lower()}")))
    assert "Linked" in answer


# ---- linking beside voting, on two servers sharing PostgreSQL ----------------------------

RACE_ROUNDS = 12


async def person_votes(sessionmaker, who: tuple[str, str], draft_id: int) -> list[int]:
    """The options of every vote cast by the person of this chat on the draft."""
    async with sessionmaker() as session:
        person = select(Resident.person_id).where(
            Resident.channel == who[0], Resident.platform_id == who[1]).scalar_subquery()
        return list((await session.scalars(
            select(Vote.option_id).join(Resident, Resident.id == Vote.resident_id)
            .where(Vote.draft_id == draft_id, Resident.person_id == person)
        )).all())


@pytest.mark.parametrize("voter", ["showed the code", "of the person joining"])
async def test_linking_while_a_chat_votes_leaves_the_person_one_vote(
    sessionmaker, database_url, voter
):
    """A chat types another's code on one server while a chat of either person votes on
    another server (PostgreSQL: two engines, as two `ykien serve`): whichever commits first,
    the person keeps one vote."""
    draft = await make_draft(sessionmaker)
    yes, no = draft.options
    async with open_database(database_url) as other_server:
        servers = ChatService(sessionmaker), ChatService(other_server)
        doubled = []
        for round_number in range(RACE_ROUNDS):
            showing = ("telegram", f"t{round_number}")
            typing = ("zalo", f"z{round_number}")
            for who in (showing, typing):
                await subscribe(servers[0], who, CAM_TU)
            if voter == "showed the code":
                voting = showing
                await servers[0].handle(press(typing, f"vote:{yes.id}"))
            else:  # the chat typing the code is already linked with this one
                voting = ("telegram", f"w{round_number}")
                await subscribe(servers[0], voting, CAM_TU)
                await servers[0].handle(text(typing, await code_shown(servers[0], voting)))
                await servers[0].handle(press(showing, f"vote:{yes.id}"))
            code = await code_shown(servers[0], showing)
            voted, linked_answer = await asyncio.gather(
                servers[0].handle(press(voting, f"vote:{no.id}")),
                servers[1].handle(text(typing, code)),
            )
            assert "Linked" in joined(linked_answer), joined(linked_answer)
            assert "vote" in joined(voted), joined(voted)
            if len(await person_votes(sessionmaker, showing, draft.id)) != 1:
                doubled.append(round_number)
    assert doubled == []
