"""`ykien secret generate|rotate`: the key of the secrets at rest (YKIEN_SECRET_KEY; see
storage.sealing), and what an operator reads when it is missing, malformed or wrong."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import Translator
from storage import sealing

if TYPE_CHECKING:
    from bot.config import Settings


def add_secret_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    secret = commands.add_parser(
        "secret", help=t("the key that encrypts the secrets kept in the database")
    ).add_subparsers(dest="secret_command", required=True, metavar="COMMAND")
    add("generate", t("print a new key for YKIEN_SECRET_KEY"), cmd_secret_generate, secret)
    add("rotate", t("encrypt every stored secret again with the first key of YKIEN_SECRET_KEY"),
        cmd_secret_rotate, secret)


def generating(args: argparse.Namespace) -> bool:
    """Whether the command is `ykien secret generate` (which needs no valid key)."""
    return args.command == "secret" and getattr(args, "secret_command", "") == "generate"


def secret_problem(problem: sealing.SecretKeyProblem, t: Translator) -> str:
    """The problem in words, with what to do: never a key itself."""
    if isinstance(problem, sealing.BadSecretKey):
        return t("YKIEN_SECRET_KEY: key no. {number} is not a key (a key is the 44 characters "
                 "printed by ykien secret generate; several keys are separated by commas). "
                 "Correct it in the environment or in the .env file.",
                 number=t.number(problem.position))
    if isinstance(problem, sealing.WrongSecretKey) and problem.configured:
        return t("Cannot read the secrets kept in the database: {secret} was encrypted with a "
                 "key that YKIEN_SECRET_KEY does not hold. Put that key back in "
                 "YKIEN_SECRET_KEY (a new key goes first, followed by the old ones, separated "
                 "by commas).", secret=problem.where)
    if isinstance(problem, sealing.WrongSecretKey):
        return t("Cannot read the secrets kept in the database: {secret} is encrypted, and "
                 "YKIEN_SECRET_KEY is not set. Set it to the key that encrypted it.",
                 secret=problem.where)
    return t("{what} can be stored only encrypted, and YKIEN_SECRET_KEY is not set. Make a "
             "key with: ykien secret generate, put it in YKIEN_SECRET_KEY and keep a copy "
             "somewhere safe.", what=str(getattr(problem, "what", "")))


async def cmd_secret_generate(args: argparse.Namespace, settings: Settings,
                              t: Translator) -> int:
    print(sealing.generate_key())
    print(t("Put this key in YKIEN_SECRET_KEY (in the environment or the .env file) on every "
            "server of this database, and keep a copy somewhere safe, apart from the backups: "
            "without it the secrets in the database cannot be read. To change keys, put the "
            "new one first (new,old), run ykien secret rotate, then remove the old one."),
          file=sys.stderr)
    return 0


async def cmd_secret_rotate(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.db import open_database
    from storage.sealed_rows import reseal_all

    sealer = sealing.current()
    if not sealer.has_key:
        print(t("YKIEN_SECRET_KEY is not set: there is no key to encrypt with. Make one with: "
                "ykien secret generate"), file=sys.stderr)
        return 2
    # Opening seals what was stored unencrypted and checks that every secret opens.
    async with open_database(settings.database_url) as sessionmaker, \
            sessionmaker() as session, session.begin():
        count = await reseal_all(session, sealer)
    print(t.plural("{count} secret is now encrypted with the first key of YKIEN_SECRET_KEY; "
                   "the other keys can be removed from it.",
                   "{count} secrets are now encrypted with the first key of YKIEN_SECRET_KEY; "
                   "the other keys can be removed from it.", count))
    return 0
