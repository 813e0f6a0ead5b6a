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


# ANSI/VT escape sequences (colours, cursor moves): CSI … final byte, or ESC + one character.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_KEPT_CONTROLS = {"\n", "\t"}
# Zero-width joiner: part of emoji sequences (family, flags); kept unless nothing else is left.
_ZWJ = "\u200d"


def _visible(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return char in _KEPT_CONTROLS
    # Format characters (zero-width space, bidi marks, BOM, soft hyphen) and lone surrogates.
    if category == "Cs":
        return False
    return category != "Cf" or char == _ZWJ


def clean_text(text: str) -> str:
    """What a person typed, made safe to store and count.

    NFC first, so decomposed Vietnamese counts one character per letter; then escape
    sequences, control characters other than newline and tab, invisible format characters
    and lone surrogates go; then surrounding white space. Text of nothing but those is "".
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _ANSI.sub("", text)
    if not text.isascii() or any(ch < " " or ch == "\x7f" for ch in text):
        text = "".join(ch for ch in text if _visible(ch))
    text = text.strip()
    return text if text.strip(_ZWJ + " \n\t") else ""
