"""The results chart: a real PNG of a sensible size, every Vietnamese letter drawn from the font
(matplotlib warns when a glyph is missing), labels and figures where an official looks."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

from matplotlib.text import Text
from PIL import Image

from handlers.i18n import translator
from storage.charts import CHART_COMMUNES, results_figure, results_png
from storage.results import CommuneFigures, DraftResults, Figures, draft_results
from tests.results_data import known_consultation


async def known_results(sessionmaker, service) -> DraftResults:
    known = await known_consultation(sessionmaker, service)
    async with sessionmaker() as session:
        found = await draft_results(session, known.draft.id)
    assert found is not None
    return found


def texts(results: DraftResults, language: str = "vi") -> list[str]:
    figure = results_figure(results, translator(language), language)
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


def missing_glyphs(results: DraftResults) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results_png(results, translator("vi"), "vi")
    return [str(warning.message) for warning in caught if "missing from" in str(warning.message)]


async def test_the_chart_is_a_png_with_every_letter_drawn(sessionmaker, service):
    found = await known_results(sessionmaker, service)
    png = results_png(found, translator("vi"), "vi")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.width >= 800 and image.height >= 400
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, bars, antialiasing: not blank
    assert len(png) > 20_000
    assert missing_glyphs(found) == []
    # the check itself works: a letter DejaVu Sans lacks is reported
    assert missing_glyphs(replace(found, title="Dự thảo 漢"))


async def test_the_chart_shows_options_communes_and_rates(sessionmaker, service):
    found = await known_results(sessionmaker, service)
    shown = texts(found)
    assert {"Phiếu theo phương án", "Tỷ lệ tham gia theo xã", "Đồng ý", "Không đồng ý",
            "Tất cả các xã", "Xã Cẩm Tú", "Phường Ba Đình"} <= set(shown)
    assert "Phường Ngọc Hà" not in shown  # nobody reached there: no bar
    assert {"3 (75%)", "1 (25%)", "85,7% (6/7)", "80% (4/5)", "100% (2/2)"} <= set(shown)
    assert "85.7% (6/7)" in texts(found, "en")


async def test_a_chart_before_any_reach_or_without_a_poll_says_so(sessionmaker, service):
    found = await known_results(sessionmaker, service)
    nothing = replace(found, options=(), total=Figures(),
                      communes=tuple(replace(c, figures=Figures()) for c in found.communes))
    shown = texts(nothing, "en")
    assert "This draft has no poll." in shown
    assert "The draft has not reached anyone yet." in shown


async def test_many_communes_draw_the_most_reached_and_count_the_rest(sessionmaker, service):
    found = await known_results(sessionmaker, service)
    many = tuple(CommuneFigures(code, Figures(reached=code, participants=1), True)
                 for code in range(1000, 1000 + CHART_COMMUNES + 3))
    shown = texts(replace(found, communes=many), "en")
    assert "Communes not drawn here: 3 (see the table)" in shown
    assert "1017" in shown and "1002" not in shown  # codes not in the list show as codes
