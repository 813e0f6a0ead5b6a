"""Files kept between runs under the user's cache folder ($XDG_CACHE_HOME/ykien, else
~/.cache/ykien): what is slow to build from packaged data (the commune index, the compiled
catalogues), so that short commands start quickly.

Each file is named by a hash of everything it was built from, so a change to any of it is
never read stale. A missing, unreadable or damaged file, or a folder that cannot be written,
only costs the time to build it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def cache_file(name: str, suffix: str, *sources: bytes) -> Path | None:
    """Where the file built from `sources` is kept: ykien/<name>-<hash><suffix>. None when
    there is no cache folder to keep it in."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if Path.home().is_dir() else "")
    if not base:
        return None
    key = hashlib.sha256(b"".join(hashlib.sha256(s).digest() for s in sources)).hexdigest()
    return Path(base) / "ykien" / f"{name}-{key[:24]}{suffix}"


def read_cached(target: Path | None) -> bytes | None:
    """The file's bytes, or None when it is missing or unreadable."""
    if target is None:
        return None
    try:
        return target.read_bytes()
    except OSError:
        return None


def save_cached(target: Path | None, content: bytes) -> None:
    """Write beside the final name and rename, so a reader never sees half of the file.
    A read-only or full disk only costs the next run the time to build it again."""
    if target is None:
        return
    # Imported only when writing: reading is what must be quick.
    import logging
    import tempfile

    log = logging.getLogger(__name__)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=target.parent, delete=False)  # noqa: SIM115 (closed below)
    except OSError:
        log.debug("cache file %s not written", target, exc_info=True)
        return
    try:
        with handle:
            handle.write(content)
        os.replace(handle.name, target)
    except OSError:
        log.debug("cache file %s not written", target, exc_info=True)
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
