"""Generate storage/data/communes.json from the `vietnam-provinces` package.

Run by hand when the upstream data changes (the package needs Python >= 3.12):

    python3.12 -m venv /tmp/vp
    /tmp/vp/bin/pip install vietnam-provinces==2026.9.0
    /tmp/vp/bin/python scripts/generate_communes.py

The bot itself only reads the generated JSON, so vietnam-provinces is not a run-time dependency.
The output is deterministic (no timestamps), so re-running on the same version changes nothing.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from importlib.metadata import version
from pathlib import Path

import vietnam_provinces as vp
from vietnam_provinces import legacy

PACKAGE = "vietnam-provinces"
OUTPUT = Path(__file__).resolve().parent.parent / "storage" / "data" / "communes.json"

# Expected totals of the post-July-2025 list; a mismatch means upstream changed and the
# tests and PRODUCT.md need a look before the new file is committed.
EXPECTED = {"provinces": 34, "communes": 3321, "xa": 2621, "phuong": 687, "dac_khu": 13}

KINDS = {"xã": "xa", "phường": "phuong", "đặc khu": "dac_khu"}

COLUMNS = {
    "provinces": ["code", "name"],
    "communes": ["code", "name", "kind", "province_code"],
    "former_provinces": ["code", "name", "new_province_codes"],
    "former_districts": ["code", "name", "former_province_code"],
    "former_communes": ["code", "name", "former_district_code", "new_codes"],
}


def clean_name(name: str) -> str:
    """Collapse stray spaces and capitalise the unit prefix (upstream has e.g. 'xã Bắc Sơn')."""
    name = " ".join(name.split())
    return name[:1].upper() + name[1:]


def build() -> tuple[dict[str, object], dict[str, int]]:
    """Collect the tables; also return counts of upstream rows that had to be left out."""
    provinces = sorted(vp.Province.iter_all(), key=lambda p: p.code.value)
    wards = sorted(vp.Ward.iter_all(), key=lambda w: w.code.value)

    communes = []
    for w in wards:
        kind = KINDS[str(w.division_type.value)]
        communes.append([w.code.value, clean_name(w.name), kind, w.province_code.value])

    # Old -> new, built through the public new -> old API (Ward.get_legacy_sources). Old codes
    # the package has no name for are skipped by that API: a former commune needs a name to be
    # searchable, so nothing is lost for the search.
    new_codes_of: dict[int, set[int]] = defaultdict(set)
    for w in wards:
        for old in w.get_legacy_sources():
            new_codes_of[old.code.value].add(w.code.value)

    old_wards = {w.code.value: w for w in legacy.Ward.iter_all()}
    old_districts = {d.code.value: d for d in legacy.District.iter_all()}
    old_provinces = {p.code.value: p for p in legacy.Province.iter_all()}
    province_of_new = {w.code.value: w.province_code.value for w in wards}

    former_communes = []
    used_districts: set[int] = set()
    # Which new provinces took the communes of each old province, to rank successors.
    successors: dict[int, Counter[int]] = defaultdict(Counter)
    for code in sorted(new_codes_of):
        w = old_wards[code]
        d = old_districts[w.district_code.value]
        new_codes = sorted(new_codes_of[code])
        former_communes.append([code, clean_name(w.name), d.code.value, new_codes])
        used_districts.add(d.code.value)
        for n in new_codes:
            successors[d.province_code.value][province_of_new[n]] += 1

    former_districts = [
        [c, clean_name(old_districts[c].name), old_districts[c].province_code.value]
        for c in sorted(used_districts)
    ]
    former_provinces = []
    for code in sorted(successors):
        # Most communes first: an old province name then narrows to its main successor.
        ranked = sorted(successors[code].items(), key=lambda kv: (-kv[1], kv[0]))
        former_provinces.append(
            [code, clean_name(old_provinces[code].name), [c for c, _ in ranked]]
        )

    data: dict[str, object] = {
        "source": f"{PACKAGE} {version(PACKAGE)}",
        "data_date": vp.__data_version__,
        "effective_date": "2025-07-01",
        "generator": "scripts/generate_communes.py",
        "columns": COLUMNS,
        "provinces": [[p.code.value, clean_name(p.name)] for p in provinces],
        "communes": communes,
        "former_provinces": former_provinces,
        "former_districts": former_districts,
        "former_communes": former_communes,
    }
    reached = {n for codes in new_codes_of.values() for n in codes}
    skipped = {
        "old communes without a new commune": len(set(old_wards) - set(new_codes_of)),
        "new communes without a former commune": len(set(province_of_new) - reached),
    }
    return data, skipped


def check(data: dict[str, object]) -> None:
    """Fail loudly when upstream totals differ from the ones the product is written for."""
    provinces, communes = data["provinces"], data["communes"]
    assert isinstance(provinces, list) and isinstance(communes, list)
    got = {"provinces": len(provinces), "communes": len(communes)}
    got.update(Counter(row[2] for row in communes))
    if got != EXPECTED:
        sys.exit(f"unexpected totals: {got} != {EXPECTED}")


def dump(data: dict[str, object]) -> str:
    """JSON with one table row per line: compact, yet readable and diff-friendly."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            rows = ",\n".join(
                "    " + json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in value
            )
            parts.append(f"  {json.dumps(key)}: [\n{rows}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    data, skipped = build()
    check(data)
    text = dump(data)
    assert json.loads(text) == data  # the hand-rolled layout must stay plain JSON
    OUTPUT.write_text(text, encoding="utf-8")
    print(
        f"wrote {OUTPUT} ({len(text.encode()) // 1024} KiB): {data['source']}, "
        f"data {data['data_date']}"
    )
    for table in COLUMNS:
        rows = data[table]
        assert isinstance(rows, list)
        print(f"  {table}: {len(rows)}")
    for what, n in skipped.items():
        print(f"  {what}: {n}")


if __name__ == "__main__":
    main()
