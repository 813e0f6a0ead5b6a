"""Reminders before a draft's deadline, through the chat, the delivery worker and the command
line: who gets one (subscribed, in the draft's communes, neither commented nor voted) and who
does not (commented, voted, stopped, erased, another commune), held for Zalo's window, once
per person, turned off per draft, and expired when the draft closes early."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from sqlalchemy import update

from bot.sending.worker import DeliveryWorker
from handlers.reminders import queue_reminders
from storage.models import Resident, utcnow
from tests import ykien_process
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.cli.test_synthesis_cli import Listening
from tests.conftest import cli_environment
from tests.results_data import comment, press, say, subscribe


def ykien(sessionmaker, cwd, *args: str) -> subprocess.CompletedProcess:
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    return ykien_process.run(args, text=True, cwd=cwd, timeout=120,
                             env={**cli_environment(url), "YKIEN_LANGUAGE": "en"})


async def remind(sessionmaker, days: int = 2) -> int:
    """What the hourly housekeeping of `ykien run` and `ykien serve` does."""
    async with sessionmaker() as session, session.begin():
        return await queue_reminders(session, utcnow(), days)


async def test_who_is_reminded(sessionmaker, service, tmp_path):
    soon = await make_draft(sessionmaker, "Giờ thu gom rác", (CAM_TU,),
                            deadline=utcnow() + timedelta(days=1))
    later = await make_draft(sessionmaker, "Lịch họp chợ", (CAM_TU,),
                             deadline=utcnow() + timedelta(days=5))
    for user in ("commented", "voted", "stopped", "erased", "silent", "quiet"):
        await subscribe(service, user, CAM_TU)
    await subscribe(service, "other", BA_DINH)
    await comment(service, "commented", soon.id, "Nên thu muộn hơn.")
    await service.handle(press("voted", f"vote:{soon.options[0].id}"))
    await service.handle(say("stopped", "/stop"))
    await service.handle(press("erased", "erase:yes"))
    async with sessionmaker() as session, session.begin():  # silent for 8 days
        await session.execute(update(Resident).where(Resident.platform_id == "silent")
                              .values(last_seen_at=utcnow() - timedelta(days=8)))

    assert await remind(sessionmaker, days=0) == 0  # YKIEN_REMINDER_DAYS=0: none
    assert await remind(sessionmaker) == 2  # silent and quiet, for the draft closing soon
    assert await remind(sessionmaker) == 0  # once per person
    channel = Listening()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert list(channel.texts) == ["quiet"]  # silent's waits for Zalo's window
    [text] = channel.texts["quiet"]
    assert "Giờ thu gom rác" in text and "Lịch họp chợ" not in text
    status = ykien(sessionmaker, tmp_path, "reminders", "status", str(soon.id))
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == (f"Reminders for draft no. {soon.id}: on; 1 sent, 0 "
                                     "waiting, 1 waiting for Zalo's window.")
    none = ykien(sessionmaker, tmp_path, "reminders", "status", str(later.id))
    assert "0 sent, 0 waiting, 0 waiting for Zalo's window" in none.stdout

    # the quiet resident answers the reminder with the button it carries
    await service.handle(press("quiet", f"vote:{soon.options[1].id}"))
    off = ykien(sessionmaker, tmp_path, "reminders", "off", str(later.id))
    assert off.returncode == 0 and f"draft no. {later.id}: off" in off.stdout
    async with sessionmaker() as session, session.begin():  # later's deadline comes near
        await session.execute(update(type(later)).where(type(later).id == later.id)
                              .values(deadline=utcnow() + timedelta(hours=5)))
    assert await remind(sessionmaker) == 0  # turned off
    assert ykien(sessionmaker, tmp_path, "reminders", "on", str(later.id)).returncode == 0
    # every silent one on this draft: who commented or voted did so on the other
    assert await remind(sessionmaker) == 4
    missing = ykien(sessionmaker, tmp_path, "reminders", "status", "999")
    assert missing.returncode == 1 and "There is no draft no. 999." in missing.stderr


async def test_closing_a_draft_expires_its_reminders(sessionmaker, service, tmp_path):
    soon = await make_draft(sessionmaker, "Giờ thu gom rác", (CAM_TU,),
                            deadline=utcnow() + timedelta(days=1))
    await subscribe(service, "quiet", CAM_TU)
    assert await remind(sessionmaker) == 1
    assert ykien(sessionmaker, tmp_path, "draft", "close", str(soon.id)).returncode == 0
    channel = Listening()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert channel.texts == {}
    status = ykien(sessionmaker, tmp_path, "reminders", "status", str(soon.id))
    assert "0 sent, 0 waiting" in status.stdout
