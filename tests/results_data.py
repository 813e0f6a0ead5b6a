"""A known consultation, built through the public paths (the conversation, a broadcast, the
delivery worker), whose results are worked out by hand below.

Draft "Phí vệ sinh" targets Xã Cẩm Tú, Phường Ba Đình and Phường Ngọc Hà (where nobody lives),
with a poll "Đồng ý" / "Không đồng ý". On channel "test" (a 7-day messaging window):

| who    | commune  | how it reached them         | comments | vote                         |
|--------|----------|-----------------------------|----------|------------------------------|
| a      | Cẩm Tú   | broadcast (then asks /drafts) | 2      | Đồng ý                       |
| b      | Cẩm Tú   | broadcast                   | 1        | — (then erases their data)   |
| c      | Cẩm Tú   | broadcast                   | —        | Đồng ý                       |
| d      | Cẩm Tú   | broadcast                   | —        | —                            |
| silent | Cẩm Tú   | held: silent for 8 days     | —        | —                            |
| g      | Cẩm Tú   | subscribed after the broadcast | 1     | —                            |
| e      | Ba Đình  | broadcast                   | 1        | Không đồng ý                 |
| f      | Ba Đình  | broadcast                   | —        | Không đồng ý, then Đồng ý    |
| blocked| Ba Đình  | unreachable: blocked the bot | —       | —                            |

Another draft ("Giờ họp chợ", Cẩm Tú only) gets one comment from a, which must not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update

from bot.channels.channel import Unreachable
from bot.channels.pacing import ChannelLimiter
from bot.sending.worker import DeliveryWorker
from handlers.capabilities import CONSOLE, Capabilities
from handlers.events import Incoming, Kind, Outgoing, Reply
from storage.drafts import broadcast
from storage.models import Draft, Resident, utcnow
from tests.chat import BA_DINH, CAM_TU, make_draft

NGOC_HA = 8
WINDOW = timedelta(days=7)
TITLE = "Phí vệ sinh"
YES, NO = "Đồng ý", "Không đồng ý"


class WindowChannel:
    """Channel "test": a 7-day messaging window (as Zalo OA), one user who blocked the bot."""

    name = "test"
    capabilities: Capabilities = Capabilities(
        buttons_per_message=CONSOLE.buttons_per_message,
        button_label_limit=CONSOLE.button_label_limit,
        text_limit=CONSOLE.text_limit, messaging_window=WINDOW,
    )

    def __init__(self) -> None:
        self.limiter = ChannelLimiter(0, per_chat=False)
        self.sent: list[str] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, user_id: str, message: Outgoing) -> str:
        if user_id == "blocked":
            raise Unreachable("Forbidden: bot was blocked by the user")
        self.sent.append(user_id)
        return f"m{len(self.sent)}"


class Listening(WindowChannel):
    """The test channel, keeping what each user was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, list[str]] = {}

    async def send(self, user_id: str, message: Outgoing) -> str:
        sent = await super().send(user_id, message)
        assert isinstance(message, Reply)
        self.texts.setdefault(user_id, []).append(message.text)
        return sent


def say(user: str, body: str) -> Incoming:
    return Incoming("test", user, Kind.TEXT, text=body)


def press(user: str, choice: str) -> Incoming:
    return Incoming("test", user, Kind.CHOICE, choice=choice)


@dataclass
class Known:
    draft: Draft
    other: Draft
    yes: int  # option ids
    no: int


async def subscribe(service, user: str, commune: int) -> None:
    await service.handle(press(user, "agree:vi"))
    await service.handle(press(user, f"commune:{commune}"))


async def comment(service, user: str, draft_id: int, text: str) -> None:
    await service.handle(press(user, f"comment:{draft_id}"))
    await service.handle(say(user, text))


async def known_consultation(sessionmaker, service) -> Known:
    for user in ("a", "b", "c", "d", "silent"):
        await subscribe(service, user, CAM_TU)
    for user in ("e", "f", "blocked"):
        await subscribe(service, user, BA_DINH)
    async with sessionmaker() as session, session.begin():
        # "silent" last wrote 8 days ago: outside the window, their message is held
        await session.execute(update(Resident).where(Resident.platform_id == "silent")
                              .values(last_seen_at=utcnow() - timedelta(days=8)))
    draft = await make_draft(sessionmaker, TITLE, (CAM_TU, BA_DINH, NGOC_HA),
                             options=(YES, NO), open_now=False)
    other = await make_draft(sessionmaker, "Giờ họp chợ", (CAM_TU,), open_now=False)
    async with sessionmaker() as session, session.begin():
        for each in (draft, other):
            await broadcast(session, await session.merge(each), utcnow())
    await DeliveryWorker(sessionmaker, {"test": WindowChannel()}).run_once()

    await subscribe(service, "g", CAM_TU)  # shown the open drafts on subscribing
    await service.handle(say("a", "/drafts"))  # reached already: no second reach
    yes, no = (option.id for option in draft.options)
    await comment(service, "a", draft.id, "Mức phí hợp lý.")
    await comment(service, "a", draft.id, "=SUM(A1) nên thu theo quý")
    await comment(service, "b", draft.id, "Phí cao quá.")
    await comment(service, "g", draft.id, "Đồng ý, nhưng cần công khai.")
    await comment(service, "e", draft.id, "Không đồng ý.")
    await comment(service, "a", other.id, "Họp chợ sớm hơn.")
    await service.handle(press("a", f"vote:{yes}"))
    await service.handle(press("c", f"vote:{yes}"))
    await service.handle(press("e", f"vote:{no}"))
    await service.handle(press("f", f"vote:{no}"))
    await service.handle(press("f", f"vote:{yes}"))  # a changed vote counts once
    await service.handle(press("b", "erase:yes"))  # b's comment stays, anonymous
    return Known(draft, other, yes, no)
