"""A draft's results as a PNG chart: votes per option, and participation by commune.

Drawn with matplotlib's Agg renderer on a bare `Figure` (no pyplot, no display, no global
state, so safe in a server), in DejaVu Sans, which matplotlib ships and which has every
Vietnamese letter. matplotlib is imported on first use: commands that draw nothing stay fast.
Texts go through the caller's translator, numbers through Babel in the caller's language.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from babel.numbers import format_percent

from storage import communes
from storage.results import CommuneFigures, DraftResults
from storage.text import N_

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FONT = "DejaVu Sans"
# Communes drawn at most (those reached most); the rest are summed up in one line.
CHART_COMMUNES = 15
WIDTH_INCHES = 9.0
DPI = 100
VOTE_COLOUR = "#1f6feb"
PARTICIPATION_COLOUR = "#2da44e"

VOTES_TITLE = N_("Votes per option")
PARTICIPATION_TITLE = N_("Participation by commune")
PARTICIPATION_MEANS = N_("persons who commented or voted ÷ persons the draft reached")
NO_POLL = N_("This draft has no poll.")
NO_VOTES = N_("No votes yet.")
NOBODY_REACHED = N_("The draft has not reached anyone yet.")
MORE_COMMUNES = N_("Communes not drawn here: {count} (see the table)")
UNKNOWN_COMMUNE = N_("unknown commune")
ALL_COMMUNES = N_("All communes")


def commune_name(code: int | None, translate: Callable[[str], str] = str) -> str:
    """The commune's name ("Xã Cẩm Tú"), its code when it is not in the list."""
    if code is None:
        return translate(UNKNOWN_COMMUNE)
    commune = communes.get_commune(code)
    return commune.name if commune else str(code)


def results_png(results: DraftResults, translate: Callable[[str], str] = str,
                language: str = "vi") -> bytes:
    """The chart as PNG bytes (for a file, a chat photo or a web response)."""
    figure = results_figure(results, translate, language)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def results_figure(results: DraftResults, translate: Callable[[str], str] = str,
                   language: str = "vi") -> Figure:
    """The chart as a matplotlib figure (what `results_png` draws)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    def percent(value: float) -> str:
        return format_percent(value, "#,##0.#%", locale=language)

    drawn = _communes_drawn(results)
    vote_rows = max(len(results.options), 1)
    commune_rows = len(drawn) + 2  # "all communes", and a line for those not drawn
    with rc_context({"font.family": FONT, "font.size": 10}):
        figure = Figure(figsize=(WIDTH_INCHES, 2.2 + 0.45 * (vote_rows + commune_rows)),
                        layout="constrained")
        figure.suptitle("\n".join(textwrap.wrap(f"{results.draft_id}. {results.title}", 80)),
                        fontsize=13, fontweight="bold")
        votes_axes, communes_axes = figure.subplots(
            2, 1, height_ratios=[vote_rows + 1, commune_rows + 1])
        _votes(votes_axes, results, translate, percent)
        _participation(communes_axes, results, drawn, translate, percent)
    return figure


def _communes_drawn(results: DraftResults) -> list[CommuneFigures]:
    """The communes reached most (then by code), at most CHART_COMMUNES, top first."""
    active = [commune for commune in results.active_communes if commune.figures.reached]
    active.sort(key=lambda commune: (-commune.figures.reached,
                                     commune.code is None, commune.code or 0))
    return active[:CHART_COMMUNES]


def _votes(axes: Axes, results: DraftResults, translate: Callable[[str], str],
           percent: Callable[[float], str]) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.set_title(translate(VOTES_TITLE), loc="left", fontweight="bold")
    total = results.total
    if not results.options or not total.voters:
        _say(axes, translate(NO_POLL if not results.options else NO_VOTES))
        return
    labels = [textwrap.shorten(option.label, 40, placeholder="…") for option in results.options]
    positions = range(len(labels))
    bars = axes.barh(positions, total.votes, color=VOTE_COLOUR)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()  # the first option on top
    axes.bar_label(bars, [f"{count} ({percent(count / total.voters)})" for count in total.votes],
                   padding=4)
    axes.set_xlim(0, max(total.votes) * 1.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no half votes
    _plain(axes)


def _participation(axes: Axes, results: DraftResults, drawn: list[CommuneFigures],
                   translate: Callable[[str], str], percent: Callable[[float], str]) -> None:
    axes.set_title(translate(PARTICIPATION_TITLE), loc="left", fontweight="bold", pad=16)
    axes.annotate(translate(PARTICIPATION_MEANS), (0, 1), xycoords="axes fraction",
                  xytext=(0, 4), textcoords="offset points", fontsize=9, fontstyle="italic")
    if not drawn:
        _say(axes, translate(NOBODY_REACHED))
        return
    total = results.total
    rows = [(translate(ALL_COMMUNES), total.participants, total.reached)] + [
        (commune_name(commune.code, translate), commune.figures.participants,
         commune.figures.reached)
        for commune in drawn
    ]
    rates = [part / reached for _, part, reached in rows]
    positions = range(len(rows))
    colours = ["#57606a"] + [PARTICIPATION_COLOUR] * len(drawn)
    bars = axes.barh(positions, rates, color=colours)
    axes.set_yticks(positions, [name for name, _, _ in rows])
    axes.invert_yaxis()
    axes.bar_label(bars, [f"{percent(rate)} ({part}/{reached})"
                          for rate, (_, part, reached) in zip(rates, rows, strict=True)],
                   padding=4)
    axes.set_xlim(0, 1.3)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1], [percent(x) for x in (0, 0.25, 0.5, 0.75, 1)])
    hidden = len([c for c in results.active_communes if c.figures.reached]) - len(drawn)
    if hidden > 0:
        axes.annotate(translate(MORE_COMMUNES).format(count=hidden), (0, 0),
                      xycoords="axes fraction", xytext=(0, -30), textcoords="offset points",
                      fontstyle="italic")
    _plain(axes)


def _say(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def _plain(axes: Axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
