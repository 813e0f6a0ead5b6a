"""The post-July-2025 provinces and communes of Vietnam, and search by (old or new) name.

Data comes from storage/data/communes.json (see scripts/generate_communes.py); it is read on
first use and indexed once. Search is diacritics-insensitive and returns candidates for the
resident to choose from: names collide, so the caller always stores the numeric code.
"""

from __future__ import annotations

import gc
import json
import marshal
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from storage.text import fold
from storage.usercache import built_or_cached, cache_file

__all__ = [
    "DATA_DATE",
    "DATA_SOURCE",
    "QUERY_LIMIT",
    "Commune",
    "FormerCommune",
    "Match",
    "Province",
    "commune_code_text",
    "communes",
    "communes_in_province",
    "find_province",
    "get_commune",
    "get_province",
    "near_misses",
    "provinces",
    "search",
    "warm_up",
]

CODE_DIGITS = 5  # as the government's list writes codes: 00004

# The longest name is under 40 characters; a longer query is a mistake, and searching it would
# cost CPU time on the event loop in proportion to its length.
QUERY_LIMIT = 100
# Word prefixes remembered between searches; typed prefixes are few, but a hostile stream
# of random ones must not grow memory without bound.
PREFIX_CACHE_SIZE = 4096

# Filled from the data file on first access (module __getattr__ below), to keep import cheap.
DATA_SOURCE: str
DATA_DATE: str


@dataclass(frozen=True)
class Province:
    """A current province-level unit; name has its prefix ("Tỉnh Thanh Hóa")."""

    code: int
    name: str


@dataclass(frozen=True)
class Commune:
    """A current commune-level unit: kind is "xa", "phuong" or "dac_khu"."""

    code: int
    name: str
    kind: str
    province: Province

    @property
    def label(self) -> str:
        """Name with its province, e.g. "Xã Cẩm Tú — Tỉnh Thanh Hóa"."""
        return f"{self.name} — {self.province.name}"


@dataclass(frozen=True)
class FormerCommune:
    """A pre-July-2025 commune, with its old district and province names and successors."""

    code: int
    name: str
    district: str
    province: str
    new_codes: tuple[int, ...]


@dataclass(frozen=True)
class Match:
    """A search hit; former is set when the commune was found through an old name."""

    commune: Commune
    former: FormerCommune | None


# Unit prefixes as they appear in names (folded) and the kind each one means. "thi_tran" only
# occurs in former names: towns (thị trấn) were abolished in 2025.
_NAME_PREFIXES = (
    ("dac khu ", "dac_khu"),
    ("thi tran ", "thi_tran"),
    ("phuong ", "phuong"),
    ("xa ", "xa"),
)
# What people type in front of a name; "p" only before a number ("P.12", an old HCMC habit).
_QUERY_PREFIXES = (*_NAME_PREFIXES, ("tt ", "thi_tran"))
_PROVINCE_PREFIXES = ("tinh ", "thanh pho ", "tp ")
_PROVINCE_ALIASES = {
    "hcm": 79,
    "tphcm": 79,
    "sai gon": 79,
    "saigon": 79,
    "hn": 1,
    "thua thien hue": 46,
}
# "thanh pho ho chi minh" is the longest province name a query can end with.
_MAX_PROVINCE_WORDS = 5
_NO_MATCH = 99
# Typing slips a name may have and still be offered as "did you mean": none below 4 letters
# (every short name is one slip from dozens), one, then two from 7 letters on (names fold to
# a few short words; more would offer strangers).
_ONE_SLIP_FROM = 4
_TWO_SLIPS_FROM = 7
_SEPARATORS = re.compile(r"[\W_]+")


def _strip_prefix(folded: str, prefixes: Iterable[tuple[str, str]]) -> tuple[str, str | None]:
    for prefix, kind in prefixes:
        if folded.startswith(prefix):
            return folded[len(prefix) :], kind
    return folded, None


def _province_bare(folded: str) -> str:
    return _strip_prefix(folded, ((prefix, "") for prefix in _PROVINCE_PREFIXES))[0]


def _lower_accented(text: str) -> str:
    # Like fold() but keeping diacritics, to prefer names spelled exactly as typed.
    return " ".join(_SEPARATORS.sub(" ", unicodedata.normalize("NFC", text.lower())).split())


def _query_forms(text: str) -> tuple[str, str | None]:
    """The folded query and, if it had diacritics, its accented form word-aligned with it."""
    folded = fold(text)
    accented = _lower_accented(text)
    if accented == folded or len(accented.split()) != len(folded.split()):
        return folded, None
    return folded, accented


def _compact(folded: str) -> str:
    # Spacing differs between sources and typists: "Ea Bia"/"EaBia", and "M'Drắk" folds to
    # "m drak" while people type "mdrak".
    return folded.replace(" ", "")


class _Rows:
    """Rows of a table kept as one marshalled blob, each read back when first asked for:
    reading all ~10,000 former communes as tuples took longer than the rest of the index."""

    def __init__(self, blob: bytes, offsets: array[int]) -> None:
        self.blob = memoryview(blob)
        self.offsets = offsets  # row i is blob[offsets[i]:offsets[i + 1]]

    @classmethod
    def packed(cls, rows: Iterable[tuple]) -> _Rows:
        offsets = array("q", [0])
        parts = []
        for row in rows:
            parts.append(marshal.dumps(row))
            offsets.append(offsets[-1] + len(parts[-1]))
        return cls(b"".join(parts), offsets)

    def __getitem__(self, index: int) -> Any:
        return marshal.loads(self.blob[self.offsets[index] : self.offsets[index + 1]])

    def __len__(self) -> int:
        return len(self.offsets) - 1


class _Data:
    """Everything loaded from the data file, plus the search indexes built from it.

    The indexes are plain lists, dicts, frozensets and arrays of ints and strings, which
    `marshal` writes and reads back several times faster than pickle reads ~30,000 objects;
    the Province, Commune, FormerCommune and Match objects are made from them when first
    asked for.
    """

    # What is kept in the cache file: everything but the objects made on demand.
    KEPT = ("source", "date", "province_rows", "commune_rows", "former_rows", "pair_communes",
            "pair_formers", "accented", "province_keys", "sorted_keys", "sorted_key_pids",
            "exact", "compact", "words", "vocabulary", "kind_pids", "province_pids")
    ARRAYS = ("pair_communes", "pair_formers", "sorted_key_pids")  # kept as their bytes
    source: str
    date: str
    province_rows: list[tuple[int, str]]
    commune_rows: list[tuple[int, str, str, int]]  # code, name, kind, province code
    # code, name, district, province, codes of the communes it became
    former_rows: _Rows
    # Per pair (see _index_names): the commune's code, and the former commune's row (-1 for
    # a current name).
    pair_communes: array[int]
    pair_formers: array[int]

    @classmethod
    def built(cls, raw: dict) -> _Data:
        data = cls()
        data.source = raw["source"]
        data.date = raw["data_date"]
        data.province_rows = [(code, name) for code, name in raw["provinces"]]
        data.commune_rows = [(code, name, kind, pcode) for code, name, kind, pcode
                             in raw["communes"]]
        old_provinces = {code: (name, new) for code, name, new in raw["former_provinces"]}
        old_districts = {code: (name, pcode) for code, name, pcode in raw["former_districts"]}
        formers = []
        for code, name, dcode, new_codes in raw["former_communes"]:
            district, pcode = old_districts[dcode]
            formers.append((code, name, district, old_provinces[pcode][0], tuple(new_codes)))
        data._index_provinces(old_provinces.values())
        data._index_names(formers)
        data.former_rows = _Rows.packed(formers)
        return data

    def kept(self) -> bytes:
        state = {name: getattr(self, name) for name in self.KEPT}
        for name in self.ARRAYS:
            state[name] = state[name].tobytes()
        state["former_rows"] = (bytes(self.former_rows.blob),
                                self.former_rows.offsets.tobytes())
        return marshal.dumps(state)

    @classmethod
    def read_back(cls, content: bytes) -> _Data:
        # Nothing read here is garbage: collecting while ~30,000 containers appear only
        # slows the reading (by a quarter).
        collecting = gc.isenabled()
        gc.disable()
        try:
            state = marshal.loads(content)
        finally:
            if collecting:
                gc.enable()
        if not isinstance(state, dict) or set(state) != set(cls.KEPT):
            raise ValueError("not a commune index of this version")
        for name in cls.ARRAYS:
            state[name] = array("q", state[name])
        blob, offsets = state["former_rows"]
        state["former_rows"] = _Rows(blob, array("q", offsets))
        data = cls()
        data.__dict__.update(state)
        return data

    def __init__(self) -> None:
        # Filled on demand: building all ~4,000 word prefixes up front doubled the load time.
        self.word_prefixes: dict[str, frozenset[int]] = {}
        self.communes_made: dict[int, Commune] = {}

    @cached_property
    def provinces(self) -> list[Province]:
        return [Province(code, name) for code, name in self.province_rows]

    @cached_property
    def province_by_code(self) -> dict[int, Province]:
        return {p.code: p for p in self.provinces}

    @cached_property
    def commune_rows_by_code(self) -> dict[int, tuple[int, str, str, int]]:
        return {row[0]: row for row in self.commune_rows}

    def commune(self, code: int) -> Commune | None:
        """The commune with this code, made once when first asked for (a search shows a few
        of ~3,300)."""
        made = self.communes_made.get(code)
        if made is None:
            row = self.commune_rows_by_code.get(code)
            if row is None:
                return None
            made = self.communes_made[code] = Commune(
                code, row[1], row[2], self.province_by_code[row[3]])
        return made

    @cached_property
    def communes(self) -> list[Commune]:
        return [self.commune(code) for code, *_ in self.commune_rows]  # type: ignore[misc]

    @cached_property
    def by_province(self) -> dict[int, list[Commune]]:
        found: dict[int, list[Commune]] = defaultdict(list)
        for c in self.communes:
            found[c.province.code].append(c)
        return found

    def match(self, pid: int) -> Match:
        """The commune a pair leads to, and the former commune it was found through."""
        code, former = self.pair_communes[pid], self.pair_formers[pid]
        commune = self.commune(code)
        assert commune is not None  # pairs are made from the communes
        if former < 0:
            return Match(commune, None)
        fcode, name, district, province, new_codes = self.former_rows[former]
        return Match(commune,
                     FormerCommune(fcode, name, district, province, new_codes))

    @cached_property
    def name_keys(self) -> list[str]:
        """Every distinct folded name without its unit word, spaced and squeezed ("cam tu",
        "camtu"), for typo-tolerant matching (their pairs: `named`)."""
        return [*self.exact, *(key for key in self.compact if key not in self.exact)]

    def named(self, key: str) -> frozenset[int]:
        """The pair ids of a key of `name_keys`."""
        return self.exact.get(key) or self.compact[key]

    def province_named(self, key: str) -> Province | None:
        code = self.province_keys.get(key)
        return None if code is None else self.province_by_code[code]

    def _index_provinces(self, old: Iterable[tuple[str, list[int]]]) -> None:
        # Current names win over aliases and former names, hence the setdefault order.
        self.province_keys: dict[str, int] = {}
        for code, name in self.province_rows:
            bare = _province_bare(fold(name))
            self.province_keys.setdefault(bare, code)
            self.province_keys.setdefault(_compact(bare), code)
        for alias, code in _PROVINCE_ALIASES.items():
            self.province_keys.setdefault(alias, code)
        for name, new_codes in old:
            # A former province narrows to the new province that took most of its communes.
            bare = _province_bare(fold(name))
            self.province_keys.setdefault(bare, new_codes[0])
            self.province_keys.setdefault(_compact(bare), new_codes[0])

    def _index_names(self, formers: list[tuple[int, str, str, str, tuple[int, ...]]]) -> None:
        # One "pair" per (name, commune it leads to); a split former commune gives several.
        # Pair ids are assigned in final display order (current before former, then province
        # name, then code), so ranking inside a quality tier is just sorting small ints.
        province_order = {code: _province_bare(fold(name)) for code, name in self.province_rows}
        province_of = {code: pcode for code, _, _, pcode in self.commune_rows}
        # (current 0 / former 1, province, commune code, former code, former row, name)
        raw_pairs: list[tuple[int, str, int, int, int, str]] = []
        for code, name, _, pcode in self.commune_rows:
            raw_pairs.append((0, province_order[pcode], code, 0, -1, name))
        for row, (fcode, name, _, _, new_codes) in enumerate(formers):
            for code in new_codes:
                raw_pairs.append((1, province_order[province_of[code]], code, fcode, row, name))
        raw_pairs.sort(key=lambda r: r[:4])

        self.pair_communes = array("q")
        self.pair_formers = array("q")
        # Per pair: name without prefix, lowercased, diacritics kept.
        self.accented: list[str] = [""] * len(raw_pairs)
        pids_of: dict[str, list[int]] = defaultdict(list)  # name as written -> pair ids
        provinces: dict[int, set[int]] = defaultdict(set)
        for pid, (_, _, code, _, former, name) in enumerate(raw_pairs):
            self.pair_communes.append(code)
            self.pair_formers.append(former)
            pids_of[name].append(pid)
            provinces[province_of[code]].add(pid)

        # Index each distinct name once: most former names recur as current names.
        exact: dict[str, list[int]] = defaultdict(list)
        compact: dict[str, list[int]] = defaultdict(list)
        words: dict[str, set[int]] = defaultdict(set)
        kinds: dict[str, set[int]] = defaultdict(set)
        keyed: list[tuple[str, int]] = []
        for name, pids in pids_of.items():
            folded = fold(name)
            key, kind = _strip_prefix(folded, _NAME_PREFIXES)
            # Same words as the folded key, so drop as many words as the prefix had.
            accented = _lower_accented(
                " ".join(name.split()[len(folded.split()) - len(key.split()) :])
            )
            for pid in pids:
                self.accented[pid] = accented
            exact[key].extend(pids)
            if _compact(key) != key:
                compact[_compact(key)].extend(pids)
            keyed.extend((key, pid) for pid in pids)
            for word in set(key.split()):
                words[word].update(pids)
            kinds[kind or ""].update(pids)

        keyed.sort()
        self.sorted_keys = [k for k, _ in keyed]
        self.sorted_key_pids = array("q", (pid for _, pid in keyed))
        self.exact = {k: frozenset(v) for k, v in exact.items()}
        self.compact = {k: frozenset(v) for k, v in compact.items()}
        self.words = {k: frozenset(v) for k, v in words.items()}
        self.vocabulary = sorted(self.words)
        self.kind_pids = {k: frozenset(v) for k, v in kinds.items()}
        self.province_pids = {k: frozenset(v) for k, v in provinces.items()}

    def tier(self, q: str, tier: int) -> frozenset[int]:
        """Pair ids whose name matches q at a quality tier (0 best); lower tiers included."""
        empty: frozenset[int] = frozenset()
        if tier == 0:
            # Equal, or equal once spaces are ignored ("ea bia" = "EaBia", "mdrak" = "M'Drắk").
            squeezed = _compact(q)
            return self.exact.get(q, empty).union(
                self.exact.get(squeezed, empty), self.compact.get(squeezed, empty)
            )
        if tier == 1:
            # Name starts with the query: a range of the sorted keys.
            lo = bisect_left(self.sorted_keys, q)
            hi = bisect_left(self.sorted_keys, q + "\U0010ffff", lo)
            return frozenset(self.sorted_key_pids[lo:hi])
        qwords = q.split()
        sets: list[frozenset[int]] = []
        if tier == 2:
            # Every word is a whole name word, except the last may still be being typed.
            sets = [self.words.get(w, empty) for w in qwords[:-1]]
            sets.append(self.starting_with(qwords[-1]))
        else:
            # Every word occurs inside some name word. The vocabulary is ~1,000 words, so
            # scanning it is cheap; and this tier only runs when the others found nothing.
            for w in qwords:
                sets.append(frozenset().union(*(self.words[v] for v in self.vocabulary if w in v)))
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:]) if sets[0] else empty

    def starting_with(self, prefix: str) -> frozenset[int]:
        """Pair ids with a name word starting with prefix (memoised; prefixes are few)."""
        found = self.word_prefixes.get(prefix)
        if found is None:
            lo = bisect_left(self.vocabulary, prefix)
            hi = bisect_left(self.vocabulary, prefix + "\U0010ffff", lo)
            found = frozenset().union(*(self.words[v] for v in self.vocabulary[lo:hi]))
            if len(self.word_prefixes) >= PREFIX_CACHE_SIZE:
                self.word_prefixes.clear()
            self.word_prefixes[prefix] = found
        return found

    def run(
        self, q: str, accented: str | None, province: int | None, limit: int
    ) -> tuple[list[Match], int]:
        """Ranked matches for a folded query, and the best tier found (_NO_MATCH if none).

        accented is the same query lowercased with its diacritics, when it had any.
        """
        # Both readings of a leading unit word are tried: "phuong son" may be "Phường Sơn…" or
        # "Xã Phương Sơn"; a match of the typed kind ranks first within a tier.
        readings: list[tuple[str, str | None, str | None]] = [(q, None, accented)]
        rest, kind = _strip_prefix(q, _QUERY_PREFIXES)
        qwords = q.split()
        if kind is None and len(qwords) > 1 and qwords[0] == "p" and qwords[1].isdigit():
            rest, kind = q[2:], "phuong"
        if kind is not None and rest:
            dropped = len(qwords) - len(rest.split())
            rest_accented = " ".join(accented.split()[dropped:]) if accented else None
            readings.append((rest, kind, rest_accented))
        allowed = self.province_pids.get(province, frozenset()) if province else None

        results: list[Match] = []
        seen: set[int] = set()
        best = _NO_MATCH
        for tier in range(4):
            if tier == 3 and results:
                break  # substring hits are a last resort: noise next to real matches
            # Display order inside a tier: typed kind first; among exact names, the ones
            # spelled with the very diacritics typed ("Tân Thạnh" before "Tân Thành").
            buckets: list[set[int]] = [set(), set(), set(), set()]
            for text, kind, acc in readings:
                pids = self.tier(text, tier)
                if allowed is not None:
                    pids = pids & allowed
                good = pids & self.kind_pids.get(kind, frozenset()) if kind else frozenset()
                for base, group in ((0, good), (2, pids - good)):
                    if tier == 0 and acc is not None:
                        same = {pid for pid in group if self.accented[pid] == acc}
                        buckets[base].update(same)
                        buckets[base + 1].update(group - same)
                    else:
                        buckets[base + 1].update(group)
            for bucket in buckets:
                for pid in sorted(bucket):
                    code = self.pair_communes[pid]
                    if code in seen:
                        continue
                    seen.add(code)
                    results.append(self.match(pid))
                    best = min(best, tier)
                    if len(results) >= limit:
                        # A worse tier never outranks a better one: no need to look further.
                        return results, best
        return results, best

    def trailing_provinces(self, words: list[str]) -> Iterator[tuple[int, Province]]:
        """The provinces the last words of a query may name ("cam tu thanh hoa"), as (how
        many words, province), the longest first; at least one word is left for the name."""
        for n in range(min(len(words) - 1, _MAX_PROVINCE_WORDS), 0, -1):
            province = self.province_for(" ".join(words[-n:]))
            if province is not None:
                yield n, province

    def province_for(self, folded: str) -> Province | None:
        """Province for a folded name, with or without its "tỉnh"/"thành phố" prefix."""
        if not folded:
            return None
        hit = self.province_named(folded) or self.province_named(_compact(folded))
        if hit is None:
            bare = _province_bare(folded)
            if bare and bare != folded:
                hit = self.province_named(bare) or self.province_named(_compact(bare))
        return hit


@cache
def _data() -> _Data:
    # Beside this module (package data), read without importlib.resources: importing it
    # costs a short command more than reading the index.
    raw = (Path(__file__).parent / "data" / "communes.json").read_bytes()
    # Named by the data, this module's code and Python's (marshal's format follows it).
    cached = cache_file("communes", ".marshal", raw, Path(__file__).read_bytes(),
                        sys.version.encode())
    return built_or_cached(cached, _Data.read_back,
                           lambda: _Data.built(json.loads(raw.decode("utf-8"))), _Data.kept)


def warm_up() -> None:
    """Load and index the list now, and make its Commune objects (which a short command
    makes only for its hits), rather than on the first search."""
    _data().by_province  # noqa: B018 (built on first access)


def __getattr__(name: str) -> str:
    if name == "DATA_SOURCE":
        return _data().source
    if name == "DATA_DATE":
        return _data().date
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def provinces() -> list[Province]:
    """All 34 provinces, by code."""
    return list(_data().provinces)


def communes() -> list[Commune]:
    """All current communes, by code."""
    return list(_data().communes)


def commune_code_text(code: int) -> str:
    """A commune code as the government's list writes it, e.g. 4 -> "00004"."""
    return f"{code:0{CODE_DIGITS}d}" if code >= 0 else str(code)


def communes_in_province(province_code: int) -> list[Commune]:
    """The communes of one province, by code ([] for an unknown province)."""
    return list(_data().by_province.get(province_code, ()))


def get_commune(code: int) -> Commune | None:
    """The current commune with this code, if any."""
    return _data().commune(code)


def get_province(code: int) -> Province | None:
    """The current province-level unit with this code, if any."""
    return _data().province_by_code.get(code)


def find_province(query: str) -> Province | None:
    """Province named by query: "thanh hoa", "Tỉnh Thanh Hóa", "hcm", or a pre-2025 name."""
    return _data().province_for(fold(query))


def search(query: str, province: str | int | None = None, limit: int = 8) -> list[Match]:
    """Communes matching a typed name (current or pre-2025), best first, at most limit.

    province (a code or a name) narrows the search; a province may also end the query
    ("cam tu thanh hoa", "tan thanh, lam dong"). An unknown province gives [], and so does
    a query longer than QUERY_LIMIT (no commune name comes near it).
    """
    data = _data()
    if limit <= 0 or len(query) > QUERY_LIMIT:
        return []
    narrow: int | None = None
    if province is not None:
        if isinstance(province, str) and province.strip().isdigit():
            province = int(province)
        found = (
            data.province_by_code.get(province)
            if isinstance(province, int)
            else data.province_for(fold(province))
        )
        if found is None:
            return []
        narrow = found.code

    # After a comma the resident is naming the province: trust it before anything else.
    head, comma, tail = query.rpartition(",")
    if comma:
        p = data.province_for(fold(tail))
        folded, accented = _query_forms(head)
        if p is not None and folded and narrow in (None, p.code):
            found_here = data.run(folded, accented, p.code, limit)[0]
            if found_here:
                return found_here

    folded, accented = _query_forms(query)
    if not folded:
        return []
    results, tier = data.run(folded, accented, narrow, limit)
    if tier <= 1:
        return results

    # Weak or no match: maybe the query ends with a province name ("cam tu thanh hoa").
    words = folded.split()
    accented_words = accented.split() if accented else None
    fallback: list[Match] = []
    for n, p in data.trailing_provinces(words):
        if narrow not in (None, p.code):
            continue
        head_accented = " ".join(accented_words[:-n]) if accented_words else None
        found_here, split_tier = data.run(" ".join(words[:-n]), head_accented, p.code, limit)
        if split_tier <= 1:
            return found_here
        if found_here and not fallback:
            fallback = found_here
    if tier <= 2 or not fallback:
        return results
    return fallback


def near_misses(query: str, limit: int = 8) -> list[Match]:
    """Communes whose names are a typing slip or two away from the query ("cam tuu", "ba
    dnh"), closest first: offered when `search` finds nothing, for the resident to choose
    from. A province may end the query ("cam tuu thanh hoa") and narrows them."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import extract

    data = _data()
    folded = fold(query) if len(query) <= QUERY_LIMIT else ""
    name, _ = _strip_prefix(folded, _QUERY_PREFIXES)
    allowed: frozenset[int] | None = None
    words = name.split()
    for n, province in data.trailing_provinces(words):
        name, allowed = " ".join(words[:-n]), data.province_pids.get(province.code)
        break
    if limit <= 0 or len(name) < _ONE_SLIP_FROM:
        return []
    slips = 2 if len(name) >= _TWO_SLIPS_FROM else 1
    close = extract(name, data.name_keys, scorer=Levenshtein.distance, score_cutoff=slips,
                    limit=None)
    found: list[Match] = []
    seen: set[int] = set()
    # Closest first; among equally close names, the search's display order (pair ids).
    ranked = sorted((distance, pid) for key, distance, _ in close for pid in data.named(key)
                    if allowed is None or pid in allowed)
    for _, pid in ranked:
        match = data.match(pid)
        if match.commune.code not in seen:
            seen.add(match.commune.code)
            found.append(match)
            if len(found) >= limit:
                break
    return found
