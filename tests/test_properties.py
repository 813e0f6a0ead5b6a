"""Random text, Unicode and button data through the real handlers: nothing escapes, nothing
stored is lost or changed.

Each example runs on the same database (hypothesis replays many inputs per test), so the
invariants are about what was stored before: earlier comments keep their text, nobody is
counted twice, and nothing is logged at ERROR (the autouse guard in conftest checks that).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.events import Incoming, Kind
from storage.models import Comment, Resident, Vote
from tests.chat import CHANNEL, make_draft, press, subscribe, text

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same inputs on every run: a failure can be replayed
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Button data as a forger would write it: our prefixes with junk, and junk alone.
PREFIXES = st.sampled_from(["vote:", "comment:", "held:", "commune:", "menu:", "lang:",
                            "agree:", "decline:", "erase:", ""])
BUTTON_DATA = st.one_of(
    st.builds(lambda prefix, rest: prefix + rest, PREFIXES, st.text(max_size=20)),
    st.builds(lambda prefix, n: f"{prefix}{n}", PREFIXES, st.integers(-5, 2**70)),
    st.text(max_size=80),
)
# Vietnamese typed with and without accents, keywords, digits of every script, invisibles.
WORDS = st.sampled_from(["dung", "dừng", "Đúng", "STOP", "bat dau", "giúp", "/start", "/stop",
                         "/mycomments", "/drafts", "/commune", "cam tu", "1", "2", "²", "①",
                         "٣", "２", "\u200b", "\u202e", "\ufeff", "\x1b[31m", "\x00", "nhà"])
TYPED = st.one_of(
    st.text(max_size=300),
    st.lists(WORDS, min_size=1, max_size=4).map(" ".join),
    st.text(alphabet="0123456789", min_size=50, max_size=2000),
)
EVENTS = st.one_of(
    st.builds(lambda data: press("u1", data), BUTTON_DATA),
    st.builds(lambda body: text("u1", body), TYPED),
    st.sampled_from([Kind.PHOTO, Kind.STICKER, Kind.EDITED, Kind.FOLLOW, Kind.OTHER]).map(
        lambda kind: Incoming(CHANNEL, "u1", kind)
    ),
)


async def _stored(sessionmaker) -> tuple[dict[int, str], int]:
    async with sessionmaker() as session:
        comments = {c.id: c.text for c in await session.scalars(select(Comment))}
        most_votes = await session.scalar(
            select(func.count()).select_from(Vote).group_by(Vote.draft_id, Vote.resident_id)
            .order_by(func.count().desc()).limit(1)
        )
    return comments, most_votes or 0


@EXAMPLES
@given(events=st.lists(EVENTS, min_size=1, max_size=8))
async def test_random_events_never_crash_nor_lose_comments(service, sessionmaker, events):
    async with sessionmaker() as session:
        known = await session.scalar(select(func.count()).select_from(Resident))
    if not known:  # first example: a resident with a comment and a vote on an open draft
        await subscribe(service)
        draft = await make_draft(sessionmaker)
        await service.handle(press("u1", f"comment:{draft.id}"))
        await service.handle(text("u1", "the first comment"))
        await service.handle(press("u1", f"vote:{draft.options[0].id}"))
    before, _ = await _stored(sessionmaker)
    for event in events:
        replies = await service.handle(event)
        assert event.kind in (Kind.BLOCKED, Kind.UNBLOCKED) or replies
    after, most_votes = await _stored(sessionmaker)
    assert {k: after.get(k) for k in before} == before
    assert most_votes <= 1


@EXAMPLES
@given(lines=st.lists(st.one_of(TYPED, WORDS), min_size=1, max_size=6))
async def test_random_lines_in_the_console_never_crash(console, lines):
    typed = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    out = await console("fuzz").say(*typed)
    assert "Traceback" not in out
