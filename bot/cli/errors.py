"""One-line explanations of what stopped a command: a setting, a file or the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.reasons import os_reason, reason_in_chain
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Problem

# The database drivers the package installs; another driver in the URL is not there.
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def config_problem(problem: Problem, t: Translator) -> str:
    if problem.choices:
        return t(
            "{variable} is “{value}”, which is not valid: use one of {choices}. "
            "Correct it in the environment or in the .env file.",
            variable=problem.variable, value=problem.value, choices=", ".join(problem.choices),
        )
    return t(
        "{variable} is “{value}”, which is not valid: it must be {expected}. "
        "Correct it in the environment or in the .env file.",
        variable=problem.variable, value=problem.value,
        expected=t(problem.expected, low=t.number(problem.low), high=t.number(problem.high)),
    )


def file_problem(error: OSError, t: Translator) -> str:
    return t(
        "Cannot use the file {path}: {reason}. Check the name, the folder and the permissions.",
        path=str(error.filename), reason=os_reason(error, t),
    )


def driver(database_url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).drivername
    except ArgumentError:
        return ""


def shown_url(database_url: str, t: Translator) -> str:
    """The database address without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return t("(not a database address)")


def database_problem(error: Exception, database_url: str, t: Translator) -> str:
    return t(
        "Cannot use the database {url}: {reason}. Check YKIEN_DATABASE_URL.",
        url=shown_url(database_url, t), reason=reason_in_chain(error, t),
    )
