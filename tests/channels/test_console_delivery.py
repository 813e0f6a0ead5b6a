"""A console is one person's chat: it delivers its own user's messages and nobody else's."""

from __future__ import annotations

from storage.models import DeliveryStatus
from tests.chat import delivery_statuses
from tests.conftest import add_draft


async def test_each_console_delivers_to_its_own_user_only(sessionmaker, console):
    anh, binh = console("anh"), console("binh")
    for resident in (anh, binh):
        await resident.say("/start", "english", "i agree", "cam tu", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    draft = await add_draft(sessionmaker)

    out = await anh.say()  # Anh's session: the broadcast arrives, for Anh only
    assert out.count(draft.title) == 1
    assert await delivery_statuses(sessionmaker) == {
        "anh": DeliveryStatus.SENT, "binh": DeliveryStatus.PENDING,
    }

    out = await binh.say()  # Bình's copy waited for Bình's own session
    assert out.count(draft.title) == 1
    assert await delivery_statuses(sessionmaker) == {
        "anh": DeliveryStatus.SENT, "binh": DeliveryStatus.SENT,
    }
    assert (await anh.say()) == ""  # nothing is delivered twice
