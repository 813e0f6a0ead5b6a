"""The annual report page (Decision 407, storage.report) of the officials' workspace, limited to
the signed-in person's communes, with its downloads (XLSX, printable HTML), which are
audited; and the printable HTML `ykien report --format html` writes too (the same tables).

`?commune=` narrows the report to one commune of the person's scope; a commune outside it is
refused (403), never silently widened or emptied.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiMapping

from bot.web.auth import page_translator, signed_in
from bot.web.pages import forbidden, record, refusal, render, session_of
from handlers.i18n import VIETNAM, Translator
from storage import communes as commune_list
from storage.audit import AuditAction
from storage.report import Period, Report, build_report, parse_day
from storage.report_table import ReportView, report_view
from storage.report_xlsx import write_report
from storage.roles import Authority, Permission
from storage.text import N_

TEMPLATES = Path(__file__).resolve().parent / "templates"
# A scope of more communes than this is chosen from by code, not from a list.
LISTED_COMMUNES = 400
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BAD_YEAR = N_("The year must be a whole number such as 2026.")
BAD_DAY = N_("“{value}” is not a date: write it as 2026-10-31 or 31/10/2026.")
BAD_ORDER = N_("The period ends ({last}) before it starts ({first}).")
BAD_COMMUNE = N_("There is no commune with code “{code}” (see ykien communes).")
OUTSIDE = N_("This commune is outside your scope: you may see the report of your own "
             "communes only.")
YOUR_COMMUNES = N_("your communes")


@dataclass(frozen=True)
class Asked:
    """What the report was asked for, as the form and the downloads send it back."""

    period: Period
    commune: int | None
    fields: dict[str, str]


def _asked(request: web.Request, values: MultiMapping[Any], t: Translator) -> Asked:
    """The period and commune of the query or the form; a page saying what is wrong (400)."""
    fields = {name: str(values.get(name, "")).strip() for name in ("year", "from", "to",
                                                                    "commune")}
    year = datetime.now(VIETNAM).year
    if fields["year"]:
        if not (fields["year"].isascii() and fields["year"].isdigit()
                and 2000 <= int(fields["year"]) <= 2999):
            raise refusal(request, 400, t(BAD_YEAR))
        year = int(fields["year"])
    whole = Period.year(year)
    days = []
    for name, default in (("from", whole.first), ("to", whole.last)):
        day = parse_day(fields[name]) if fields[name] else default
        if day is None:
            raise refusal(request, 400, t(BAD_DAY, value=fields[name]))
        days.append(day)
    period = Period(days[0], days[1])
    if period.first > period.last:
        raise refusal(request, 400, t(BAD_ORDER, first=period.first.isoformat(),
                                      last=period.last.isoformat()))
    commune = None
    if fields["commune"]:
        text = fields["commune"]
        if not (text.isascii() and text.isdigit() and len(text) <= 9) \
                or commune_list.get_commune(int(text)) is None:
            raise refusal(request, 400, t(BAD_COMMUNE, code=text))
        commune = int(text)
    fields["year"] = str(year)
    return Asked(period, commune, fields)


def _scope(request: web.Request, authority: Authority, asked: Asked, t: Translator
           ) -> tuple[frozenset[int] | None, str]:
    """The communes the report covers and their name: the person's (None: all), or the one
    asked for, which must be among them."""
    allowed = authority.communes(Permission.READ)
    if asked.commune is not None:
        if allowed is not None and asked.commune not in allowed:
            raise refusal(request, 403, t(OUTSIDE))
        found = commune_list.get_commune(asked.commune)
        return frozenset({asked.commune}), found.label if found else str(asked.commune)
    if allowed is None:
        return None, ""
    scopes = {grant.scope for grant in authority.grants}
    return allowed, next(iter(scopes)).place if len(scopes) == 1 else t(YOUR_COMMUNES)


async def _report(request: web.Request, values: MultiMapping[Any], permission: Permission
                  ) -> tuple[Report, str, Asked]:
    t = page_translator(request)
    authority = signed_in(request).authority
    if not authority.may(permission):
        raise forbidden(request, permission)
    asked = _asked(request, values, t)
    communes, place = _scope(request, authority, asked, t)
    async with session_of(request) as session:
        report = await build_report(session, asked.period, communes)
    return report, place, asked


def _choices(authority: Authority) -> list[tuple[int, str]] | None:
    """The communes to choose from (None: too many to list, typed by code)."""
    allowed = authority.communes(Permission.READ)
    if allowed is None or len(allowed) > LISTED_COMMUNES:
        return None
    found = [commune_list.get_commune(code) for code in allowed]
    return sorted(((c.code, c.label) for c in found if c is not None),
                  key=lambda item: item[1])


async def report_page(request: web.Request) -> web.Response:
    t = page_translator(request)
    report, place, asked = await _report(request, request.query, Permission.READ)
    authority = signed_in(request).authority
    return render(request, "report.html", {
        "view": report_view(report, place, t, t.number), "fields": asked.fields,
        "choices": _choices(authority), "may_download": authority.may(Permission.EXPORT),
    })


async def report_download(request: web.Request) -> web.Response:
    """The report as XLSX or printable HTML (a POST with the form's CSRF token), audited."""
    t = page_translator(request)
    post = await request.post()
    chosen = str(post.get("format", ""))
    if chosen not in ("xlsx", "html"):
        raise refusal(request, 400, t("Choose XLSX or HTML."))
    report, place, asked = await _report(request, post, Permission.EXPORT)
    authority = signed_in(request).authority
    async with session_of(request) as session, session.begin():
        await record(request, session, authority.role_for(Permission.EXPORT),
                     AuditAction.REPORT_DOWNLOADED, detail=(
                         f"{chosen} {asked.period.first}..{asked.period.last}; communes: "
                         + ("all" if report.communes is None else
                            ",".join(map(str, sorted(report.communes)))[:120])))
    name = f"ykien-report-{asked.period.first}-{asked.period.last}.{chosen}"
    if chosen == "xlsx":
        out = io.BytesIO()
        write_report(out, report, place, t)
        body, content_type = out.getvalue(), XLSX_TYPE
    else:
        body = printable_html(report_view(report, place, t, t.number), t).encode()
        content_type = "text/html; charset=utf-8"
    return web.Response(body=body, headers={
        "Content-Type": content_type, "Content-Disposition": f'attachment; filename="{name}"'})


def printable_html(view: ReportView, t: Translator) -> str:
    """The report as a page of its own (styles inside, for printing or keeping as a file)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report_print.html").render(
        view=view, t=t)


ROUTES = [
    web.get("/report", report_page),
    web.post("/report", report_download),
]
