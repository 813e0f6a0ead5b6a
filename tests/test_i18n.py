"""Every text a person reads exists in Vietnamese and English, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from handlers.i18n import LANGUAGES, translator
from tests.conftest import ROOT

PLACEHOLDER = re.compile(r"\{(\w*)\}")


def catalogue(language: str):
    with (ROOT / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def source_messages(tmp_path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "t", "-k", "plural:1,2", "--no-location", "--omit-header",
         "-o", str(pot), "bot", "handlers", "storage"],
        check=True, cwd=ROOT,
    )
    with pot.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_is_complete_and_placeholders_match(language, tmp_path):
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue(language) if m.id}
    missing = source_messages(tmp_path) - set(messages)
    assert not missing, f"not in the {language} catalogue: {sorted(missing)[:5]}"
    for message in messages.values():
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated in {language}: {ids[0]!r}"
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == expected, (language, ids[0], string)


def test_vietnamese_is_the_default_and_differs_from_english():
    assert translator(None).language == "vi"
    assert translator("vi")("Open drafts") != translator("en")("Open drafts")
    assert translator("fr").language == "vi"
