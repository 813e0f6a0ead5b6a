"""Text folding for matching what people type against names and commands."""

from __future__ import annotations

import re
import unicodedata

# Unicode does not decompose đ/Đ into d + mark, so NFD alone would keep them. Ð/ð (Icelandic
# eth) are included because they look identical and turn up in text typed with old keyboards.
_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "Ð": "d", "ð": "d"})
_SEPARATORS = re.compile(r"[\W_]+")
# The combining diacritics block holds every Vietnamese tone and vowel mark: a regex drops
# them fast, and only text with other scripts' marks needs the per-character check.
_COMMON_MARKS = re.compile("[\u0300-\u036f]+")


def fold(text: str) -> str:
    """Lowercase, drop Vietnamese diacritics, map đ to d, turn punctuation runs into one space.

    >>> fold("  Đặc khu  Phú Quốc! ")
    'dac khu phu quoc'
    """
    text = unicodedata.normalize("NFD", text.translate(_D_MAP).lower())
    text = _COMMON_MARKS.sub("", text)
    if not text.isascii():
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", text).strip()


def N_(message: str) -> str:
    """Mark a string for the translation catalogue; the caller translates it later."""
    return message
