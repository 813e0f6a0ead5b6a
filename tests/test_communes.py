"""Commune list (package data) and commune search."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from storage import communes as cm
from storage.text import fold

CAM_TU = "Xã Cẩm Tú — Tỉnh Thanh Hóa"


def labels(query: str, province: str | int | None = None) -> list[str]:
    return [m.commune.label for m in cm.search(query, province)]


def bare(name: str) -> str:
    """Folded name without its unit prefix."""
    return re.sub(r"^(xa|phuong|dac khu|thi tran) ", "", fold(name))


# --- data -------------------------------------------------------------------------------


def test_counts() -> None:
    assert len(cm.provinces()) == 34
    everything = cm.communes()
    assert len(everything) == 3321
    assert Counter(c.kind for c in everything) == {"xa": 2621, "phuong": 687, "dac_khu": 13}
    assert len({c.code for c in everything}) == 3321
    assert sum(len(cm.communes_in_province(p.code)) for p in cm.provinces()) == 3321


def test_names_match_kinds() -> None:
    prefixes = {"xa": "Xã ", "phuong": "Phường ", "dac_khu": "Đặc khu "}
    for c in cm.communes():
        assert c.name.startswith(prefixes[c.kind]), c.name


def test_data_file_records_source_and_date() -> None:
    raw = json.loads(
        resources.files("storage").joinpath("data", "communes.json").read_text(encoding="utf-8")
    )
    assert raw["source"] == "vietnam-provinces 2026.9.0"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["data_date"])
    assert raw["source"] == cm.DATA_SOURCE
    assert raw["data_date"] == cm.DATA_DATE


def test_lookups() -> None:
    cam_tu = cm.get_commune(15148)
    assert cam_tu is not None
    assert cam_tu.label == CAM_TU
    assert cam_tu.kind == "xa"
    assert cam_tu.province == cm.Province(38, "Tỉnh Thanh Hóa")
    assert cm.get_commune(-1) is None
    assert [p.code for p in cm.provinces()] == sorted(p.code for p in cm.provinces())
    in_thanh_hoa = cm.communes_in_province(38)
    assert cam_tu in in_thanh_hoa
    assert {c.province.code for c in in_thanh_hoa} == {38}
    assert cm.communes_in_province(999) == []


# --- fold -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đặc khu Phú Quốc", "dac khu phu quoc"),
        ("DỪNG", "dung"),
        ("dung", "dung"),
        ("ĐỐNG ĐA", "dong da"),
        ("  Xã   Cẩm-Tú!! ", "xa cam tu"),
        ("Phường Văn Miếu - Quốc Tử Giám", "phuong van mieu quoc tu giam"),
        ("Cư M'gar", "cu m gar"),
        ("P.12, Q.3", "p 12 q 3"),
        ("?!…", ""),
        ("", ""),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_decomposed_input() -> None:
    # Text pasted from some keyboards arrives decomposed (NFD); it must fold the same.
    assert fold("Ca\u0302\u0309m Tu\u0301") == "cam tu"


# --- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["Cẩm Tú", "cam tu", "xa cam tu", "Xã Cẩm Tú", "CAM TU", "xã cẩm tú"]
)
def test_cam_tu_first(query: str) -> None:
    first = cm.search(query)[0]
    assert first.commune.label == CAM_TU
    assert first.former is None


def test_colliding_names_return_all() -> None:
    found = cm.search("tan thanh", limit=100)
    exact = [m for m in found if m.former is None and bare(m.commune.name) == "tan thanh"]
    assert len(exact) == 15
    # Exact current names first; former names and longer names ("Tân Thạnh Đông") after.
    assert found[:15] == exact
    assert len(found) > 15
    assert len(cm.search("tan thanh")) == 8  # default limit; the caller offers "more…"
    assert len(cm.search("tan thanh", limit=3)) == 3


def test_ba_dinh() -> None:
    first_three = labels("ba dinh")[:3]
    assert set(first_three) == {
        "Phường Ba Đình — Thành phố Hà Nội",
        "Xã Ba Đình — Tỉnh Thanh Hóa",
        "Xã Ba Dinh — Tỉnh Quảng Ngãi",
    }
    assert labels("phuong ba dinh")[0] == "Phường Ba Đình — Thành phố Hà Nội"
    assert labels("Xã Ba Đình")[0] == "Xã Ba Đình — Tỉnh Thanh Hóa"


@pytest.mark.parametrize("query", ["dong da", "đống đa", "ĐỐNG ĐA", "Phường Đống Đa"])
def test_d_with_stroke(query: str) -> None:
    assert labels(query)[0] == "Phường Đống Đa — Thành phố Hà Nội"


def test_d_with_stroke_prefix() -> None:
    found = cm.search("DUC")
    assert found
    assert labels("DUC") == labels("duc") == labels("Đức")
    for m in found:
        name = m.former.name if m.former else m.commune.name
        assert any(word.startswith("duc") for word in bare(name).split()), name


def test_former_name_leads_to_new_commune() -> None:
    first = cm.search("cam luong")[0]
    assert first.commune.label == CAM_TU
    assert first.former is not None
    assert first.former.name == "Xã Cẩm Lương"
    assert first.former.district == "Huyện Cẩm Thủy"
    assert first.former.province == "Tỉnh Thanh Hóa"
    assert first.former.new_codes == (15148,)


def test_split_former_commune_offers_each_new_one() -> None:
    # Xã Vầy Nưa (Huyện Đà Bắc, Tỉnh Hoà Bình) was split between two new units.
    found = cm.search("vay nua")
    assert {m.commune.label for m in found} == {
        "Phường Thống Nhất — Tỉnh Phú Thọ",
        "Xã Tiền Phong — Tỉnh Phú Thọ",
    }
    for m in found:
        assert m.former is not None
        assert m.former.name == "Xã Vầy Nưa"
        assert m.former.district == "Huyện Đà Bắc"
        assert set(m.former.new_codes) == {m.commune.code for m in found}


def test_old_town_prefix() -> None:
    for query in ("Thị trấn Phong Điền", "tt phong dien", "thi tran phong dien"):
        first = cm.search(query)[0]
        assert first.commune.label == "Xã Phong Điền — Thành phố Cần Thơ"
        assert first.former is not None
        assert first.former.name == "Thị trấn Phong Điền"


def test_special_zone() -> None:
    for query in ("dac khu phu quoc", "Đặc khu Phú Quốc", "phu quoc"):
        first = cm.search(query)[0]
        assert first.commune.label == "Đặc khu Phú Quốc — Tỉnh An Giang"
        assert first.commune.kind == "dac_khu"


def test_each_commune_found_once() -> None:
    for query in ("ba dinh", "tan thanh", "dong da", "t", "phuong 1", "an"):
        codes = [m.commune.code for m in cm.search(query, limit=200)]
        assert len(codes) == len(set(codes)), query


def test_unchanged_commune_reported_as_current() -> None:
    # Xã Cẩm Tú existed before 2025 too; the current name wins over the identical former one.
    assert all(m.former is None for m in cm.search("cam tu") if m.commune.code == 15148)


@pytest.mark.parametrize("province", ["lam dong", "Tỉnh Lâm Đồng", 68, "68"])
def test_province_argument(province: str | int) -> None:
    found = cm.search("tan thanh", province=province, limit=50)
    assert found[0].commune.label == "Xã Tân Thành — Tỉnh Lâm Đồng"
    assert {m.commune.province.code for m in found} == {68}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cam tu thanh hoa", CAM_TU),
        ("Cẩm Tú, Thanh Hóa", CAM_TU),
        ("xa cam tu tinh thanh hoa", CAM_TU),
        ("cam luong thanh hoa", CAM_TU),
        ("tan thanh, lam dong", "Xã Tân Thành — Tỉnh Lâm Đồng"),
        ("tan thanh lam dong", "Xã Tân Thành — Tỉnh Lâm Đồng"),
        ("ba dinh ha noi", "Phường Ba Đình — Thành phố Hà Nội"),
        ("tan thanh hcm", "Phường Tân Thành — Thành phố Hồ Chí Minh"),
    ],
)
def test_trailing_province(query: str, expected: str) -> None:
    found = cm.search(query)
    assert found[0].commune.label == expected
    assert {m.commune.province.code for m in found} == {found[0].commune.province.code}


def test_province_narrowing_excludes_others() -> None:
    assert cm.search("cam tu", province="ha noi") == []
    assert cm.search("cam tu", province="no such province") == []
    assert cm.search("cam tu", province=999) == []


@pytest.mark.parametrize("query", ["", "   ", "?!.,", "…", "xyzzy qwerty", "zzzzzz"])
def test_nothing_found(query: str) -> None:
    assert cm.search(query) == []


def test_limit_zero() -> None:
    assert cm.search("cam tu", limit=0) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("thanh hoa", 38),
        ("Tỉnh Thanh Hóa", 38),
        ("THANH HOA", 38),
        ("ha noi", 1),
        ("Thành phố Hà Nội", 1),
        ("hcm", 79),
        ("TP. HCM", 79),
        ("Thành phố Hồ Chí Minh", 79),
        ("daklak", 66),
        ("long an", 80),  # pre-2025 province, now part of Tỉnh Tây Ninh
    ],
)
def test_find_province(query: str, code: int) -> None:
    found = cm.find_province(query)
    assert found is not None
    assert found.code == code


@pytest.mark.parametrize("query", ["", "  ", "cam tu", "atlantis"])
def test_find_province_none(query: str) -> None:
    assert cm.find_province(query) is None


# --- typing slips: "did you mean" ---------------------------------------------------------


def near(query: str) -> list[str]:
    return [m.commune.label for m in cm.near_misses(query)]


@pytest.mark.parametrize("query", ["cam tuu", "Xa Cam Tuu", "camtuu", "cam tuu, thanh hoa"])
def test_a_slip_in_the_name_offers_it_first(query: str) -> None:
    assert cm.search(query) == []  # what the resident typed finds nothing as it is
    assert near(query)[0] == CAM_TU


def test_slips_are_offered_closest_first_and_within_the_province_named() -> None:
    assert near("ba dnh")[:3] == [
        "Phường Ba Đình — Thành phố Hà Nội", "Xã Ba Dinh — Tỉnh Quảng Ngãi",
        "Xã Ba Đình — Tỉnh Thanh Hóa"]
    assert all(label.endswith("Tỉnh Thanh Hóa") for label in near("cam tuu thanh hoa"))
    assert len(near("cam tuu")) == 8  # limit


@pytest.mark.parametrize("query", ["", "abc", "zzzzzz", "xyzzy qwerty", "cam tuu" * 20])
def test_no_slip_offered_for_short_far_or_long_text(query: str) -> None:
    assert near(query) == []
