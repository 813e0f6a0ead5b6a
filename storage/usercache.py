"""Files kept between runs under the user's cache folder ($XDG_CACHE_HOME/ykien, else
~/.cache/ykien): what is slow to build from packaged data (the commune index, the compiled
catalogues), so that short commands start quickly.

Each file is named by a hash of everything it was built from, so a change to any of it is
never read stale; writing one removes the files of the same name built from other sources
(an upgrade, a new catalogue), so the folder holds one of each. A missing, unreadable or
damaged file, or a folder that cannot be written, only costs the time to build it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_KEY_LENGTH = 24  # hexadecimal digits of the sources' hash in a file's name


def cache_file(name: str, suffix: str, *sources: bytes) -> Path | None:
    """Where the file built from `sources` is kept: ykien/<name>-<hash><suffix>. None when
    there is no cache folder to keep it in."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if Path.home().is_dir() else "")
    if not base:
        return None
    key = hashlib.sha256(b"".join(hashlib.sha256(s).digest() for s in sources)).hexdigest()
    return Path(base) / "ykien" / f"{name}-{key[:_KEY_LENGTH]}{suffix}"


def built_or_cached(target: Path | None, read_back: Callable[[bytes], T],
                    build: Callable[[], T], dump: Callable[[T], bytes]) -> T:
    """What `build` makes, read back from the cache file `target` when it holds it, else
    built and kept there. A file `read_back` refuses (damaged, from another version:
    whatever it raises) is built again and replaced."""
    content = read_cached(target)
    if content is not None:
        try:
            return read_back(content)
        except Exception:
            import logging

            logging.getLogger(__name__).debug("cache file %s unreadable; built again", target,
                                              exc_info=True)
    built = build()
    save_cached(target, dump(built))
    return built


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
        return
    _remove_older_builds(target)


def _remove_older_builds(target: Path) -> None:
    """The files of `target`'s name built from other sources: never read again by this
    installation. (Two installations of different versions sharing the folder would each
    remove the other's file: that costs them only the time to build it again.)"""
    stem, _, key = target.stem.rpartition("-")
    for other in target.parent.glob(f"{stem}-*{target.suffix}"):
        other_key = other.stem.rpartition("-")[2]
        if (other != target and other.stem == f"{stem}-{other_key}"
                and len(other_key) == len(key) and _is_hexadecimal(other_key)):
            with contextlib.suppress(OSError):
                other.unlink()


def _is_hexadecimal(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
