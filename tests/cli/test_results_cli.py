"""`ykien results`, run as a user would (a separate process), on the known consultation of
tests/results_data.py: the table in Vietnamese, exact JSON, the chart file and its refusals."""

from __future__ import annotations

import json
import subprocess

from PIL import Image

from tests import ykien_process
from tests.chat import BA_DINH, CAM_TU
from tests.conftest import cli_environment
from tests.results_data import known_consultation


def ykien(database_url: str, cwd, *args: str, language: str = "vi"
          ) -> subprocess.CompletedProcess:
    return ykien_process.run(
        args, text=True, cwd=cwd, timeout=120,
        env={**cli_environment(database_url), "YKIEN_LANGUAGE": language},
    )


def url_of(sessionmaker) -> str:
    return sessionmaker.kw["bind"].url.render_as_string(hide_password=False)


async def test_the_table_in_vietnamese(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    done = ykien(url_of(sessionmaker), tmp_path, "results", str(known.draft.id))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Dự thảo số {known.draft.id}: “Phí vệ sinh” — đang lấy ý kiến")
    assert "Đã đến 7 người (tin nhắn phát đi 6, khi đăng ký 1)" in lines[1]
    assert "tham gia: 6 trên 7 người đã đến (85,7%)" in lines[2]
    assert [line.split() for line in lines[4:6]] == [
        ["Đồng", "ý", "3", "75%"], ["Không", "đồng", "ý", "1", "25%"]]
    table = {line.split("  ")[0].strip() or line.split()[0]: line.split()
             for line in lines[7:lines.index("", 7)]}
    #                       reached held unreachable comments yes no took part
    assert table["00004"][-7:] == ["2", "0", "1", "1", "1", "1", "100%"]
    assert table["00008"][-7:] == ["0", "0", "0", "0", "0", "0", "–"]
    assert table["15148"][-7:] == ["5", "1", "0", "4", "2", "0", "80%"]
    assert table["Tổng"][-7:] == ["7", "1", "1", "5", "3", "1", "85,7%"]
    assert "Phường Ba Đình" in lines[8] and "Xã Cẩm Tú" in lines[10]
    # then where the comments and votes came from (all by chat here; nobody said whom)
    assert {"Góp ý theo nguồn: chat 5.", "Góp ý theo đối tượng: không nêu 5.",
            "Phiếu theo đối tượng: không nêu 4."} <= set(lines[lines.index("", 7) + 1:])


async def test_json_for_programs(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    done = ykien(url_of(sessionmaker), tmp_path, "results", str(known.draft.id),
                 "--format", "json", language="en")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["draft"]["title"] == "Phí vệ sinh" and found["draft"]["state"] == "open"
    assert found["options"] == [{"position": 1, "label": "Đồng ý"},
                                {"position": 2, "label": "Không đồng ý"}]
    # by chat app: "" until comments and votes record their channel (issue 18's chat side)
    channels = {name: found["total"].pop(name) for name in ("comments_by_channel",
                                                             "votes_by_channel")}
    assert [sum(counts.values()) for counts in channels.values()] == [5, 4]
    assert found["total"] == {
        "reached": 7, "reached_by_way": {"broadcast": 6, "subscribed": 1, "asked": 0,
                                         "took_part": 0},
        "held": 1, "unreachable": 1, "comments": 5, "votes": [3, 1], "voters": 4,
        "participants": 6, "participation": 6 / 7,
        "comments_by_source": {"chat": 5, "meeting": 0, "phone": 0, "paper": 0, "other": 0},
        "offline_comments": 0,
        "comments_by_category": {"individual": 0, "organisation": 0, "business": 0, "": 5},
        "votes_by_category": {"individual": 0, "organisation": 0, "business": 0, "": 4},
    }
    by_code = {commune["code"]: commune for commune in found["communes"]}
    assert list(by_code) == [f"{BA_DINH:05d}", "00008", f"{CAM_TU:05d}"]
    assert by_code["15148"]["name"] == "Xã Cẩm Tú"
    assert by_code["15148"]["province"] == "Tỉnh Thanh Hóa"
    assert (by_code["15148"]["votes"], by_code["15148"]["participation"]) == ([2, 0], 0.8)


async def test_the_chart_file_and_what_is_refused(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    url, draft = url_of(sessionmaker), str(known.draft.id)
    chart = tmp_path / "ket-qua.png"
    done = ykien(url, tmp_path, "results", draft, "--chart", str(chart), language="en")
    assert done.returncode == 0, done.stderr
    assert f"Chart written to {chart}." in done.stdout
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 400
    assert not list(tmp_path.glob("*.part"))  # no temporary left behind

    chart.write_bytes(b"earlier")
    done = ykien(url, tmp_path, "results", draft, "--chart", str(chart), language="en")
    assert done.returncode == 1 and "already exists" in done.stderr and "--force" in done.stderr
    assert done.stdout == "" and chart.read_bytes() == b"earlier"
    done = ykien(url, tmp_path, "results", draft, "--chart", str(chart), "--force")
    assert done.returncode == 0, done.stderr
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    done = ykien(url, tmp_path, "results", draft, "--chart", str(tmp_path), language="en")
    assert done.returncode == 1 and "is a folder" in done.stderr
    done = ykien(url, tmp_path, "results", draft, "--chart", str(tmp_path / "no" / "c.png"),
                 language="en")
    assert done.returncode == 1 and "Cannot use the file" in done.stderr
    assert "Traceback" not in done.stderr


async def test_an_unknown_draft_writes_nothing(sessionmaker, tmp_path):
    chart = tmp_path / "c.png"
    done = ykien(url_of(sessionmaker), tmp_path, "results", "99", "--chart", str(chart),
                 language="en")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "There is no draft no. 99.\n"
    assert not chart.exists()
