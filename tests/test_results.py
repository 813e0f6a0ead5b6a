"""Reaches and results: exact figures on a known consultation built through the public paths
(tests/results_data.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.sending.worker import DeliveryWorker
from storage import outbox
from storage.drafts import broadcast
from storage.models import Reach, ReachWay, Resident, utcnow
from storage.results import DraftResults, Figures, draft_results
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.results_data import NGOC_HA, WindowChannel, known_consultation, press, say, subscribe


async def results(sessionmaker, draft_id: int, communes=None) -> DraftResults:
    async with sessionmaker() as session:
        found = await draft_results(session, draft_id, communes)
    assert found is not None
    return found


def by_code(found: DraftResults) -> dict[int | None, Figures]:
    return {commune.code: commune.figures for commune in found.communes}


CAM_TU_FIGURES = Figures(
    reached=5, held=1, unreachable=0, comments=4, votes=(2, 0), participants=4,
    reached_by_way={ReachWay.BROADCAST: 4, ReachWay.SUBSCRIBED: 1},
)
BA_DINH_FIGURES = Figures(
    reached=2, held=0, unreachable=1, comments=1, votes=(1, 1), participants=2,
    reached_by_way={ReachWay.BROADCAST: 2},
)
NOTHING = Figures(votes=(0, 0))


async def test_the_known_consultation_gives_exact_figures(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    found = await results(sessionmaker, known.draft.id)
    assert [option.label for option in found.options] == ["Đồng ý", "Không đồng ý"]
    assert by_code(found) == {CAM_TU: CAM_TU_FIGURES, BA_DINH: BA_DINH_FIGURES,
                              NGOC_HA: NOTHING}
    assert [commune.code for commune in found.communes] == [BA_DINH, NGOC_HA, CAM_TU]
    assert all(commune.targeted for commune in found.communes)
    assert found.total == Figures(
        reached=7, held=1, unreachable=1, comments=5, votes=(3, 1), participants=6,
        reached_by_way={ReachWay.BROADCAST: 6, ReachWay.SUBSCRIBED: 1},
    )
    assert found.total.participation == 6 / 7
    assert by_code(found)[CAM_TU].participation == 4 / 5
    assert by_code(found)[NGOC_HA].participation is None
    assert [commune.code for commune in found.active_communes] == [BA_DINH, CAM_TU]

    other = await results(sessionmaker, known.other.id)
    # a, b, c, d (broadcast; "silent" held), and g shown it on subscribing; a's one comment
    assert other.total.reached == 5 and other.total.comments == 1
    assert other.total.participants == 1


async def test_a_scope_of_communes_keeps_only_their_figures(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    found = await results(sessionmaker, known.draft.id, frozenset({BA_DINH}))
    assert [commune.code for commune in found.communes] == [BA_DINH]
    assert found.total == BA_DINH_FIGURES
    assert found.scope == frozenset({BA_DINH})
    outside = await results(sessionmaker, known.draft.id, frozenset({4242}))
    assert outside.communes == () and outside.total == Figures(votes=(0, 0))


async def test_reaches_outlive_the_outbox_purge_and_the_persons_erasure(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    async with sessionmaker() as session, session.begin():
        assert await outbox.purge(session, utcnow() + timedelta(days=1)) > 0
    found = await results(sessionmaker, known.draft.id)
    # the unreachable message was purged with the sent ones; the held one is not finished
    assert (found.total.reached, found.total.participants) == (7, 6)
    assert (found.total.held, found.total.unreachable) == (1, 0)
    async with sessionmaker() as session:
        unlinked = (await session.execute(
            select(Reach.commune_code, Reach.way, Reach.took_part_at.is_not(None))
            .where(Reach.draft_id == known.draft.id, Reach.person_id.is_(None))
        )).all()
    assert [tuple(row) for row in unlinked] == [(CAM_TU, "broadcast", True)]  # b's


async def test_each_way_of_reaching_counts_a_person_once(sessionmaker, service):
    draft = await make_draft(sessionmaker, "Chợ", (CAM_TU,))  # open, nobody queued
    await subscribe(service, "x", CAM_TU)  # shown on subscribing
    await service.handle(say("x", "/drafts"))  # shown again: still one reach
    await subscribe(service, "y", BA_DINH)  # not a target
    await service.handle(press("y", f"commune:{CAM_TU}"))  # moves in: shown on subscribing
    await subscribe(service, "z", CAM_TU)
    async with sessionmaker() as session, session.begin():
        assert await broadcast(session, await session.merge(draft), utcnow()) == 3
    await DeliveryWorker(sessionmaker, {"test": WindowChannel()}).run_once()  # sent to all 3
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(Resident.platform_id, Reach.way, Reach.channel, Reach.commune_code)
            .join(Resident, Resident.person_id == Reach.person_id).order_by(Resident.platform_id)
        )).all()
    assert [tuple(row) for row in rows] == [
        ("x", "subscribed", "test", CAM_TU), ("y", "subscribed", "test", CAM_TU),
        ("z", "subscribed", "test", CAM_TU),
    ]


async def test_asking_for_open_drafts_is_a_reach(sessionmaker, service):
    await subscribe(service, "x", CAM_TU)
    draft = await make_draft(sessionmaker, "Chợ", (CAM_TU,))  # opened after x subscribed
    await service.handle(say("x", "/drafts"))
    found = await results(sessionmaker, draft.id)
    assert found.total.reached_by_way == {ReachWay.ASKED: 1}


async def test_taking_part_without_a_recorded_reach_counts_as_reached(sessionmaker, service):
    await subscribe(service, "x", CAM_TU)
    draft = await make_draft(sessionmaker, "Chợ", (CAM_TU,))  # opened after x subscribed
    # x votes with a button they got some other way (a message from before reaches)
    await service.handle(press("x", f"vote:{draft.options[1].id}"))
    found = await results(sessionmaker, draft.id)
    assert found.total == Figures(reached=1, votes=(0, 1), participants=1,
                                  reached_by_way={ReachWay.TOOK_PART: 1})
    assert found.total.participation == 1.0


async def test_two_chats_reached_then_linked_count_one_person(sessionmaker, service):
    for user in ("p", "q"):
        await service.handle(press(user, "agree:en"))
        await service.handle(press(user, f"commune:{CAM_TU}"))
    draft = await make_draft(sessionmaker, "Chợ", (CAM_TU,), open_now=False)
    async with sessionmaker() as session, session.begin():
        assert await broadcast(session, await session.merge(draft), utcnow()) == 2
    await DeliveryWorker(sessionmaker, {"test": WindowChannel()}).run_once()
    await service.handle(press("q", f"vote:{draft.options[0].id}"))  # q takes part
    assert (await results(sessionmaker, draft.id)).total.reached == 2
    shown = "".join(reply.text for reply in await service.handle(say("p", "/link")))
    code = re.search(r"code: ([A-Z0-9]{6})\n", shown)
    assert code, shown
    await service.handle(say("q", code.group(1)))  # q's person joins p's
    found = await results(sessionmaker, draft.id)
    assert (found.total.reached, found.total.participants) == (1, 1)
