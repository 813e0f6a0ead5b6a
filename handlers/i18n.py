"""Translations (Babel .po catalogues in `locales/`) and locale-aware formatting.

A catalogue is compiled from its .po file on first use and kept in the user's cache folder
(storage.usercache) with the few number symbols of its language, so that a short command
neither parses the .po file nor loads Babel's locale data (together about 0.15 s).
"""

from __future__ import annotations

import gettext
import io
import marshal
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from storage import VIETNAM
from storage.text import N_
from storage.usercache import built_or_cached, cache_file

__all__ = ["LANGUAGES", "N_", "VIETNAM", "Translator", "translator"]

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
# The decimal pattern whose whole numbers Python's own grouping writes as Babel does.
GROUPED_BY_THOUSANDS = "#,##0.###"


@dataclass(frozen=True)
class _Compiled:
    """A language's catalogue compiled to .mo, and how its whole numbers are written."""

    mo: bytes
    group: str  # "" when the language's pattern is not GROUPED_BY_THOUSANDS: Babel writes them
    minus: str

    def dumped(self) -> bytes:
        return marshal.dumps((self.mo, self.group, self.minus))

    @classmethod
    def loaded(cls, content: bytes) -> _Compiled:
        mo, group, minus = marshal.loads(content)
        if not (isinstance(mo, bytes) and isinstance(group, str) and isinstance(minus, str)):
            raise ValueError("not a compiled catalogue")
        return cls(mo, group, minus)


def _compile(language: str, po: bytes) -> _Compiled:
    from babel import Locale
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.numbers import get_group_symbol, get_minus_sign_symbol

    buffer = io.BytesIO()
    write_mo(buffer, read_po(io.BytesIO(po), locale=language))
    grouped = Locale.parse(language).decimal_formats[None].pattern == GROUPED_BY_THOUSANDS
    return _Compiled(buffer.getvalue(), get_group_symbol(language) if grouped else "",
                     get_minus_sign_symbol(language))


@cache
def _catalogue(language: str) -> tuple[gettext.GNUTranslations, _Compiled]:
    # Compiled from the .po file, so no build step or committed .mo is needed; the cache is
    # named by the .po file, this module and Babel's version, which the compiled form depends on.
    import locales  # the catalogues' package: its folder, without importlib.resources

    po = (Path(locales.__file__).parent / language / "LC_MESSAGES" / "messages.po").read_bytes()
    babel = find_spec("babel")
    babel_version = Path(babel.origin).read_bytes() if babel and babel.origin else b""
    target = cache_file(f"messages-{language}", ".marshal", po, Path(__file__).read_bytes(),
                        babel_version)
    return built_or_cached(target, lambda content: _ready(_Compiled.loaded(content)),
                           lambda: _ready(_compile(language, po)), lambda ready: ready[1].dumped())


def _ready(compiled: _Compiled) -> tuple[gettext.GNUTranslations, _Compiled]:
    """The translations of a compiled catalogue (ValueError, OSError if its .mo is damaged)."""
    return gettext.GNUTranslations(io.BytesIO(compiled.mo)), compiled


class Translator:
    """Texts, numbers and dates for one language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._translations, self._compiled = _catalogue(self.language)

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
        group, minus = self._compiled.group, self._compiled.minus
        if type(value) is int and group:  # as Babel writes it, without loading its locale data
            digits = f"{abs(value):,}".replace(",", group)
            return minus + digits if value < 0 else digits
        from babel.numbers import format_decimal

        return format_decimal(value, locale=self.language)

    def datetime(self, value: datetime) -> str:
        """A date and time in Vietnam time, e.g. '17:00 ngày 30/11/2026'."""
        from babel.dates import format_datetime

        return format_datetime(value, self(N_("HH:mm 'on' dd/MM/yyyy")), tzinfo=VIETNAM,
                               locale=self.language)


def translator(language: str | None) -> Translator:
    return Translator(language or DEFAULT_LANGUAGE)
