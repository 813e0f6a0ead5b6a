"""Secrets at rest: the credentials the database holds are sealed (encrypted and
authenticated) with `cryptography`'s Fernet, under the keys of YKIEN_SECRET_KEY, so that a
copied database or backup gives away neither the Zalo Official Account nor the pseudonyms.

YKIEN_SECRET_KEY is a comma-separated list of Fernet keys (`ykien secret generate` makes one):
the first seals, every one opens (MultiFernet), so a new key is put first, `ykien secret
rotate` seals everything again with it, and the old one can then go.

A sealed value is stored as `fernet:` + the Fernet token; a value without that mark was
written before any key existed (or without one) and is read as it is, until the first start
with a key seals it (storage.sealed_rows). The process's keys are set once at start
(`configure`, from the settings), as the log references are: the sealed column type
(storage.models.SealedText) and the generated keys (storage.keys) read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a key is configured: short commands do not pay for it
    from cryptography.fernet import MultiFernet

SEALED = "fernet:"


class SecretKeyProblem(Exception):
    """YKIEN_SECRET_KEY cannot be used, or does not open what the database holds."""


class BadSecretKey(SecretKeyProblem):
    """YKIEN_SECRET_KEY holds something that is not a Fernet key."""

    def __init__(self, position: int) -> None:
        super().__init__(f"YKIEN_SECRET_KEY: key no. {position} is not a Fernet key")
        self.position = position


class WrongSecretKey(SecretKeyProblem):
    """A sealed value that none of the configured keys opens (or no key is configured)."""

    def __init__(self, where: str, configured: bool) -> None:
        super().__init__(
            f"{where} was sealed with a key that YKIEN_SECRET_KEY does not hold"
            if configured else f"{where} is sealed, and YKIEN_SECRET_KEY is not set")
        self.where = where
        self.configured = configured


class NoSecretKey(SecretKeyProblem):
    """Something must be stored sealed, and YKIEN_SECRET_KEY is not set."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} can be stored only encrypted: set YKIEN_SECRET_KEY "
                         "(make one with: ykien secret generate)")
        self.what = what


def generate_key() -> str:
    """A new random key, as YKIEN_SECRET_KEY takes it."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


@dataclass(frozen=True)
class Sealer:
    """Seals with the first key, opens with any; without keys it seals nothing."""

    keys: MultiFernet | None = None

    @classmethod
    def from_setting(cls, setting: str) -> Sealer:
        """The sealer of a YKIEN_SECRET_KEY value; BadSecretKey names a key that is not one."""
        parts = [part.strip() for part in setting.split(",") if part.strip()]
        if not parts:
            return cls()
        from cryptography.fernet import Fernet, MultiFernet

        keys = []
        for position, part in enumerate(parts, start=1):
            try:
                keys.append(Fernet(part))
            except (ValueError, TypeError):
                raise BadSecretKey(position) from None
        return cls(MultiFernet(keys))

    @property
    def has_key(self) -> bool:
        return self.keys is not None

    def seal(self, plain: str) -> str:
        """The value as stored: sealed when there is a key; "" (nothing) stays ""."""
        if not plain or self.keys is None:
            return plain
        return SEALED + self.keys.encrypt(plain.encode()).decode()

    def open(self, stored: str, where: str) -> str:
        """The value a stored one holds; `where` names it in the error when no key opens it."""
        if not is_sealed(stored):
            return stored
        if self.keys is None:
            raise WrongSecretKey(where, configured=False)
        from cryptography.fernet import InvalidToken

        try:
            return self.keys.decrypt(stored[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise WrongSecretKey(where, configured=True) from None

    def reseal(self, stored: str, where: str) -> str:
        """The value sealed with the first key (opened with whichever does); a plain one is
        sealed."""
        if self.keys is None:
            raise NoSecretKey(where)
        if not is_sealed(stored):
            return self.seal(stored)
        from cryptography.fernet import InvalidToken

        try:
            return SEALED + self.keys.rotate(stored[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise WrongSecretKey(where, configured=True) from None


_current = Sealer()


def configure(setting: str) -> Sealer:
    """Use the keys of this YKIEN_SECRET_KEY value from now on in this process."""
    global _current
    _current = Sealer.from_setting(setting)
    return _current


def current() -> Sealer:
    return _current


def require_key(what: str) -> Sealer:
    """The sealer, if it has a key; else NoSecretKey naming `what` was to be stored."""
    if not _current.has_key:
        raise NoSecretKey(what)
    return _current
