"""Secrets at rest (issue 20, part 4): the Zalo OA tokens, the PKCE verifier and the generated
keys are sealed with YKIEN_SECRET_KEY; the database holds none of them in clear; a wrong or
missing key is a clear error; rotation; rows stored before a key are sealed at the next start;
without a key the OA stores no token, and the pseudonym key is still made (with a warning).

`ykien` runs here as in test_zalo_oa_cli: its `main` in a thread, the fake Zalo on our loop.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.channels.channel import ChannelDisabled
from bot.service import ChatService
from handlers.events import Incoming, Kind
from storage import keys, sealing, tokens
from storage.db import open_database
from storage.export import export_csv
from storage.models import utcnow
from tests.channels.fake_zalo import APP_ID, APP_SECRET, OA_SECRET, FakeZalo
from tests.channels.test_zalo_oa import make_channel
from tests.cli.test_zalo_oa_cli import consent_query, ykien
from tests.conftest import TEST_SECRET_KEY, add_draft

OTHER_KEY = sealing.generate_key()


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    server = FakeZalo()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def oa_env(monkeypatch, database_url, zalo) -> None:
    """The OA's settings for `ykien` (the suite's YKIEN_SECRET_KEY is already set)."""
    for name, value in {
        "YKIEN_DATABASE_URL": database_url, "YKIEN_LANGUAGE": "en", "YKIEN_TELEGRAM_TOKEN": "",
        "YKIEN_ZALO_APP_ID": APP_ID, "YKIEN_ZALO_APP_SECRET": APP_SECRET,
        "YKIEN_ZALO_OA_SECRET": OA_SECRET, "YKIEN_ZALO_API_URL": zalo.url,
        "YKIEN_ZALO_OAUTH_URL": zalo.url, "YKIEN_PUBLIC_URL": "https://ykien.example",
        "YKIEN_ZALO_ACCESS_TOKEN": "", "YKIEN_ZALO_REFRESH_TOKEN": "",
    }.items():
        monkeypatch.setenv(name, value)


async def raw_secrets(database_url: str) -> dict[str, str]:
    """What the database holds in the secret columns, read as stored (not through the
    models, which open sealed values)."""
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        found = {}
        for name, value in (await session.execute(text(
                "SELECT key, value FROM app_settings"))).all():
            found[name] = value
        for row in (await session.execute(text(
                "SELECT access_token, refresh_token, pkce_verifier FROM channel_tokens"))).all():
            found.update(access=row[0], refresh=row[1], verifier=row[2])
        return found


def database_bytes(database_url: str) -> bytes:
    """The SQLite database's files as a thief would copy them (the file and its WAL)."""
    path = Path(make_url(database_url).database or "")
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def connect(fake_zalo, capsys) -> tuple[str, str]:
    """`ykien zalo auth`, then the code pasted: the token pair Zalo issued."""
    assert await ykien("zalo", "auth") == 0
    query = consent_query(capsys.readouterr().out)
    accesses, refreshes = set(fake_zalo.access_tokens), set(fake_zalo.refresh_tokens)
    assert await ykien("zalo", "auth", "--code", fake_zalo.consent(query["code_challenge"])) == 0
    capsys.readouterr()
    (access,) = fake_zalo.access_tokens - accesses
    (refresh,) = fake_zalo.refresh_tokens - refreshes
    return access, refresh


async def test_the_tokens_are_stored_sealed_and_read_back(oa_env, zalo, sessionmaker,
                                                          database_url, capsys):
    assert await ykien("zalo", "auth") == 0
    capsys.readouterr()
    verifier_stored = (await raw_secrets(database_url))["verifier"]
    assert verifier_stored.startswith(sealing.SEALED) and len(verifier_stored) > 128
    access, refresh = await connect(zalo, capsys)
    stored = await raw_secrets(database_url)
    assert stored["access"].startswith(sealing.SEALED)
    assert stored["refresh"].startswith(sealing.SEALED)
    assert access not in str(stored) and refresh not in str(stored)
    if database_url.startswith("sqlite"):
        copied = database_bytes(database_url)
        assert access.encode() not in copied and refresh.encode() not in copied
    # The application reads them back as they were.
    async with sessionmaker() as session:
        row = await tokens.get(session, "zalo")
    assert row is not None and (row.access_token, row.refresh_token) == (access, refresh)
    assert await ykien("zalo", "status") == 0
    assert "Access token valid until" in capsys.readouterr().out


async def test_a_wrong_or_missing_key_is_a_clear_error(oa_env, zalo, monkeypatch,
                                                       database_url, capsys):
    await connect(zalo, capsys)
    monkeypatch.setenv("YKIEN_SECRET_KEY", OTHER_KEY)
    assert await ykien("zalo", "status") == 1
    err = capsys.readouterr().err
    assert "encrypted with a key that YKIEN_SECRET_KEY does not hold" in err
    assert "Traceback" not in err and OTHER_KEY not in err
    # Any command that opens the database says so at once, not only the OA's.
    assert await ykien("audit") == 1
    assert "does not hold" in capsys.readouterr().err
    monkeypatch.delenv("YKIEN_SECRET_KEY")
    assert await ykien("zalo", "status") == 1
    assert "is encrypted, and YKIEN_SECRET_KEY is not set" in capsys.readouterr().err
    # Nothing was changed by the failed starts: the right key still reads everything.
    monkeypatch.setenv("YKIEN_SECRET_KEY", TEST_SECRET_KEY)
    assert await ykien("zalo", "status") == 0


async def test_a_malformed_key_is_refused_without_being_shown(oa_env, monkeypatch, capsys):
    monkeypatch.setenv("YKIEN_SECRET_KEY", f"{TEST_SECRET_KEY}, not-a-key-at-all")
    assert await ykien("zalo", "status") == 2
    err = capsys.readouterr().err
    assert "key no. 2 is not a key" in err and "not-a-key-at-all" not in err
    # Making a good key still works.
    assert await ykien("secret", "generate") == 0
    made = capsys.readouterr().out.strip()
    assert sealing.Sealer.from_setting(made).has_key and made != TEST_SECRET_KEY


async def test_rotation_seals_everything_with_the_new_key(oa_env, zalo, monkeypatch,
                                                          sessionmaker, database_url, capsys):
    access, refresh = await connect(zalo, capsys)
    async with sessionmaker() as session, session.begin():
        pseudonym_key = await keys.pseudonym_key(session)
    before = await raw_secrets(database_url)
    monkeypatch.setenv("YKIEN_SECRET_KEY", f"{OTHER_KEY},{TEST_SECRET_KEY}")
    assert await ykien("secret", "rotate") == 0
    assert "3 secrets are now encrypted with the first key" in capsys.readouterr().out
    after = await raw_secrets(database_url)
    assert all(after[name] != before[name] for name in ("access", "refresh", "pseudonym_key"))
    # The old key alone no longer opens them; the new one alone does, to the same values.
    monkeypatch.setenv("YKIEN_SECRET_KEY", TEST_SECRET_KEY)
    assert await ykien("zalo", "status") == 1
    assert "does not hold" in capsys.readouterr().err
    monkeypatch.setenv("YKIEN_SECRET_KEY", OTHER_KEY)
    assert await ykien("zalo", "status") == 0
    sealing.configure(OTHER_KEY)
    async with sessionmaker() as session, session.begin():
        row = await tokens.get(session, "zalo")
        assert row is not None and (row.access_token, row.refresh_token) == (access, refresh)
        assert await keys.pseudonym_key(session) == pseudonym_key


async def test_rotation_needs_a_key(oa_env, monkeypatch, capsys):
    monkeypatch.delenv("YKIEN_SECRET_KEY")
    assert await ykien("secret", "rotate") == 2
    assert "ykien secret generate" in capsys.readouterr().err


@pytest.mark.allow_errors  # the OA that cannot send says so at ERROR
async def test_without_a_key_the_oa_stores_no_token(oa_env, zalo, monkeypatch, sessionmaker,
                                                    database_url, capsys):
    monkeypatch.delenv("YKIEN_SECRET_KEY")
    assert await ykien("zalo", "auth") == 2
    err = capsys.readouterr().err
    assert "stored only encrypted" in err and "ykien secret generate" in err
    assert await ykien("zalo", "status") == 1
    assert "YKIEN_SECRET_KEY is not set" in capsys.readouterr().out
    # A running OA with a configured pair neither stores it nor sends.
    sealing.configure("")
    access, refresh = zalo.issue_pair()
    channel = make_channel(zalo, ChatService(sessionmaker), pair=(access, refresh))
    try:
        with pytest.raises(ChannelDisabled, match="YKIEN_SECRET_KEY"):
            await channel.keeper.access_token()
        with pytest.raises(ChannelDisabled, match="YKIEN_SECRET_KEY"):
            await channel.keeper.refresh(access)
    finally:
        await channel.stop()
    assert not zalo.refreshes()
    assert not {"access", "refresh"} & set(await raw_secrets(database_url))
    with pytest.raises(sealing.NoSecretKey):
        async with sessionmaker() as session:
            await tokens.save_pair(session, "zalo", access, refresh, utcnow(),
                                   utcnow() + timedelta(days=1), utcnow())


async def test_without_a_key_the_pseudonym_key_is_made_with_a_warning_and_sealed_later(
        service, sessionmaker, database_url, caplog):
    sealing.configure("")
    draft = await add_draft(sessionmaker)
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice="agree:en"))
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice="commune:15148"))
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice=f"vote:{draft.options[0].id}"))

    async def exported() -> str:
        out = io.StringIO()
        async with sessionmaker() as session, session.begin():
            await export_csv(session, out)
        return next(csv.DictReader(io.StringIO(out.getvalue())))["Resident"]

    with caplog.at_level(logging.WARNING, logger="storage.keys"):
        pseudonym = await exported()
    assert any("pseudonym_key is stored unencrypted" in r.getMessage() for r in caplog.records)
    plain = (await raw_secrets(database_url))["pseudonym_key"]
    assert not sealing.is_sealed(plain)
    # The first start with a key seals it; the pseudonyms stay what they were.
    sealing.configure(TEST_SECRET_KEY)
    stored = (await raw_secrets(database_url))["pseudonym_key"]  # opening the database seals
    assert sealing.is_sealed(stored) and plain not in stored
    if database_url.startswith("sqlite"):  # nor is a copy left in a free page or the WAL
        assert plain.encode() not in database_bytes(database_url)
    assert await exported() == pseudonym


async def test_tokens_stored_before_a_key_are_sealed_at_the_next_start(sessionmaker,
                                                                      database_url):
    async with sessionmaker() as session, session.begin():
        await session.execute(text(
            "INSERT INTO channel_tokens (channel, access_token, refresh_token, updated_at, "
            "problem, pkce_verifier, pkce_state) VALUES "
            "('zalo', 'AT-plain', 'RT-plain', CURRENT_TIMESTAMP, '', '', '')"))
    stored = await raw_secrets(database_url)
    assert sealing.is_sealed(stored["access"]) and sealing.is_sealed(stored["refresh"])
    async with sessionmaker() as session:
        row = await tokens.get(session, "zalo")
    assert row is not None and (row.access_token, row.refresh_token) == ("AT-plain", "RT-plain")
