"""What the system said went wrong, in the user's words, with its own words kept after them.

Operating-system messages ("No such file or directory", "[Errno 111] Connect call failed")
and parser messages are English whatever the user reads; a Vietnamese sentence should not
end in English, but the technical detail helps whoever fixes it, so it follows in brackets.
"""

from __future__ import annotations

import errno
import re

from handlers.i18n import Translator
from storage.text import N_

CAUSES = {
    errno.ENOENT: N_("No such file or directory"),
    errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"),
    errno.EISDIR: N_("Is a directory"),
    errno.ENOTDIR: N_("Not a directory"),
    errno.ENOSPC: N_("No space left on device"),
    errno.EROFS: N_("Read-only file system"),
    errno.EEXIST: N_("File exists"),
    errno.ENAMETOOLONG: N_("File name too long"),
    errno.ECONNREFUSED: N_("Connection refused: nothing listens at that address"),
    errno.ETIMEDOUT: N_("Connection timed out"),
    errno.EHOSTUNREACH: N_("No route to host"),
    errno.ENETUNREACH: N_("Network is unreachable"),
    errno.ECONNRESET: N_("Connection reset by peer"),
}

# tomllib writes where it stopped as "(at line 2, column 11)" and has no attributes for it.
_TOML_PLACE = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_TOML_END = re.compile(r"^(?P<what>.*?)\s*\(at end of document\)$")


def os_reason(error: OSError, t: Translator) -> str:
    """The cause of an OSError in the user's language, the system's words after it."""
    detail = error.strerror or str(error)
    cause = CAUSES.get(error.errno or 0)
    if cause is None:
        return detail
    said = t(cause)
    return said if said == detail else f"{said} ({detail})"


def reason_in_chain(error: BaseException, t: Translator) -> str:
    """The first line of what went wrong, through the OSError behind it when there is one."""
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    seen: BaseException | None = error
    for _ in range(8):  # a driver error wraps an OSError a few levels down at most
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in CAUSES:
            return f"{t(CAUSES[seen.errno])} ({first_line})"
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return first_line


def toml_reason(message: str, t: Translator) -> str:
    """Where a TOML file stopped making sense, in the user's words; tomllib's after it."""
    place = _TOML_PLACE.match(message)
    if place:
        return t("the file stops making sense at line {line}, column {column} ({detail})",
                 line=place["line"], column=place["column"], detail=place["what"])
    end = _TOML_END.match(message)
    if end:
        return t("the file ends too early ({detail})", detail=end["what"])
    return message
