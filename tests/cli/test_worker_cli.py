"""`ykien worker`: a process that only sends what the outbox holds, beside `ykien serve`. Run as
an admin runs it, a separate process against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal

from bot.service import ChatService
from handlers.events import Incoming, Kind
from storage.drafts import broadcast
from storage.models import Delivery, DeliveryStatus, utcnow
from tests.chat import make_draft, scalar_count
from tests.cli.test_webhook_cli import environment, fake, finished, start  # noqa: F401

RESIDENT = "4242"


async def test_a_worker_sends_the_queued_drafts_and_receives_nothing(
    fake, database_url, sessionmaker, tmp_path  # noqa: F811
):
    service = ChatService(sessionmaker)
    for choice in ("agree:en", "commune:15148"):
        await service.handle(Incoming("telegram", RESIDENT, Kind.CHOICE, choice=choice))
    draft = await make_draft(sessionmaker, title="Rác thải sinh hoạt", open_now=False)
    async with sessionmaker() as session:
        await broadcast(session, draft, utcnow())
        await session.commit()

    process = await start(environment(fake, database_url), tmp_path, "worker")
    try:
        sent = await fake.wait_for("sendMessage", timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        code, stderr = await finished(process)
    assert code == 0, stderr
    assert "Rác thải sinh hoạt" in sent.params["text"]
    assert str(sent.params["chat_id"]) == RESIDENT
    # A worker takes no part in receiving: no polling, no webhook set or removed.
    for method in ("getUpdates", "setWebhook", "deleteWebhook"):
        assert fake.calls_to(method) == [], method
    assert await scalar_count(sessionmaker, Delivery,
                              Delivery.status == DeliveryStatus.SENT) == 1


async def test_a_worker_with_no_channel_says_how_to_configure_one(
    fake, database_url, tmp_path  # noqa: F811
):
    env = environment(fake, database_url, TELEGRAM_TOKEN="")
    code, stderr = await finished(await start(env, tmp_path, "worker"))
    assert code == 2 and "YKIEN_TELEGRAM_TOKEN" in stderr and "Traceback" not in stderr
