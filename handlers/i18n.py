"""Translations (Babel .po catalogues in `locales/`) and locale-aware formatting."""

from __future__ import annotations

import gettext
import io
from datetime import datetime
from functools import cache
from importlib.resources import files

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from storage import VIETNAM
from storage.text import N_

__all__ = ["LANGUAGES", "N_", "VIETNAM", "Translator", "translator"]

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    # Compiled in memory from the .po file, so no build step or committed .mo is needed.
    po_file = files("locales") / language / "LC_MESSAGES" / "messages.po"
    with po_file.open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Translator:
    """Texts, numbers and dates for one language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._translations = _catalogue(self.language)

    def __call__(self, message: str, **values: object) -> str:
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def gettext(self, message: str) -> str:
        """The translation alone, unformatted (for texts with %-placeholders, like argparse's)."""
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._translations.ngettext(singular, plural, count)

    def plural(self, singular: str, plural: str, count: int, **values: object) -> str:
        text = self._translations.ngettext(singular, plural, count)
        return text.format(count=self.number(count), **values)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.language)

    def datetime(self, value: datetime) -> str:
        """A date and time in Vietnam time, e.g. '17:00 ngày 30/11/2026'."""
        return format_datetime(value, self(N_("HH:mm 'on' dd/MM/yyyy")), tzinfo=VIETNAM,
                               locale=self.language)


def translator(language: str | None) -> Translator:
    return Translator(language or DEFAULT_LANGUAGE)
