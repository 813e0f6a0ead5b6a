"""A draft's breakdown (storage.results.Breakdown) in words: where its comments came from (the
chat or each offline source), by which chat app, and whom the respondents answered for. The
command line, the web page and /results in chat say it alike."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.i18n import Translator
from storage.models import CommentSource
from storage.offline import CATEGORY_WORDS, SOURCE_WORDS
from storage.respondents import CHANNEL_NAMES, NOT_SAID
from storage.results import Breakdown, Figures


def percent(share: float, t: Translator) -> str:
    from babel.numbers import format_percent  # here: the command line imports this module

    return format_percent(share, "#,##0.#%", locale=t.language)


def participation(figures: Figures, t: Translator) -> str:
    """Participation as a percentage; "–" while nobody was reached."""
    rate = figures.participation
    return "–" if rate is None else percent(rate, t)


def vote_share(count: int, total: Figures, t: Translator) -> str:
    """An option's share of the votes; "–" while nobody voted."""
    return percent(count / total.voters, t) if total.voters else "–"


def reached_line(total: Figures, t: Translator, ways: str = "") -> str:
    """Persons reached (`ways`: how, in words, or ""), waiting and unreachable."""
    return t.plural(
        "Reached {count} person{ways}; waiting for Zalo's messaging window: {held}; "
        "unreachable (blocked the bot): {unreachable}.",
        "Reached {count} persons{ways}; waiting for Zalo's messaging window: {held}; "
        "unreachable (blocked the bot): {unreachable}.",
        total.reached, ways=f" ({ways})" if ways else "", held=t.number(total.held),
        unreachable=t.number(total.unreachable))


def took_part_line(total: Figures, t: Translator) -> str:
    """Comments, votes, and the persons reached who took part."""
    return t.plural(
        "Comments: {comments}; votes: {votes}; took part: {participants} of {count} person "
        "reached ({rate}).",
        "Comments: {comments}; votes: {votes}; took part: {participants} of {count} persons "
        "reached ({rate}).",
        total.reached, comments=t.number(total.comments), votes=t.number(total.voters),
        participants=t.number(total.participants), rate=participation(total, t))


def _listed(counts: Mapping[str, int], words: Mapping[str, str], t: Translator) -> str:
    """"chat 4, meeting 1": the keys with a count, in the order of `words`, then the others."""
    order = [*words, *sorted(key for key in counts if key not in words)]
    return ", ".join(f"{t(words[key]) if key in words else key} {t.number(counts[key])}"
                     for key in order if counts.get(key))


def category_words() -> dict[str, str]:
    return {**{category.value: words for category, words in CATEGORY_WORDS.items()},
            "": NOT_SAID}


def source_words() -> dict[str, str]:
    return {source.value: words for source, words in SOURCE_WORDS.items()}


def offline_line(breakdown: Breakdown, t: Translator) -> str:
    """One short line on the comments received offline ("" when there are none)."""
    if not breakdown.offline_comments:
        return ""
    offline = {key: count for key, count in breakdown.comments_by_source.items()
               if key != CommentSource.CHAT}
    sources = _listed(offline, source_words(), t)
    return t.plural("Of the comments, {count} was received offline ({sources}).",
                    "Of the comments, {count} were received offline ({sources}).",
                    breakdown.offline_comments, sources=sources)


def breakdown_lines(breakdown: Breakdown, t: Translator) -> list[str]:
    """The whole breakdown, a line for each way of counting that has anything."""
    lines = []
    if sources := _listed(breakdown.comments_by_source, source_words(), t):
        lines.append(t("Comments by source: {counts}.", counts=sources))
    apps = {key: count for key, count in breakdown.comments_by_channel.items() if key}
    if chat := _listed(apps, CHANNEL_NAMES, t):
        lines.append(t("Chat comments by app: {counts}.", counts=chat))
    if whom := _listed(breakdown.comments_by_category, category_words(), t):
        lines.append(t("Comments by respondent: {counts}.", counts=whom))
    apps = {key: count for key, count in breakdown.votes_by_channel.items() if key}
    if chat := _listed(apps, CHANNEL_NAMES, t):
        lines.append(t("Votes by app: {counts}.", counts=chat))
    if whom := _listed(breakdown.votes_by_category, category_words(), t):
        lines.append(t("Votes by respondent: {counts}.", counts=whom))
    return lines
