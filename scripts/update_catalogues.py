"""Re-extract translatable texts and merge them into the catalogues.

English messages are their own translation, so the English catalogue is filled in here;
Vietnamese texts are written by hand in locales/vi/LC_MESSAGES/messages.po.
Run: python scripts/update_catalogues.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = ["N_", "t", "plural:1,2"]


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=ROOT)


def main() -> None:
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    run("extract", "-F", "babel.cfg", *keywords, "--no-location", "--omit-header",
        "-o", "locales/messages.pot", "bot", "handlers", "storage")
    for language in ("vi", "en"):
        run("update", "-D", "messages", "-i", "locales/messages.pot", "-d", "locales",
            "-l", language, "--no-fuzzy-matching", "--ignore-obsolete", "--omit-header")
    english = ROOT / "locales/en/LC_MESSAGES/messages.po"
    with english.open("rb") as handle:
        catalogue = read_po(handle, locale="en")
    for message in catalogue:
        if (message.id and not message.string) or message.string == ("", ""):
            message.string = message.id
    with english.open("wb") as handle:
        write_po(handle, catalogue, omit_header=True, width=100)


if __name__ == "__main__":
    main()
