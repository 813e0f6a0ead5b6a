"""Near-duplicates: which group each new comment joins.

Comments already grouped are the anchors (their group, key hash and band keys are stored);
the new ones are placed among them without regrouping anything:

1. exact duplicates: equal key hashes (normalise.key_hash), joined at once;
2. one comment per distinct key goes on: those sharing a band key (signatures) are
   candidates, each compared with the first of its bucket (an anchor when there is one, so
   a bucket of thousands costs thousands of comparisons, not millions);
3. each candidate pair is verified (`same_point`: rapidfuzz's token sort ratio, then word by
   word, nothing but typos and fillers may differ, and negations and numbers never) and
   joined, best first, into groups; two groups that exist already are never joined (an
   official may have split them), so a new comment joins one existing group at most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from rapidfuzz.process import cpdist

from storage.grouping.normalise import Normalised, key_hash
from storage.grouping.signatures import BANDS, band_keys

SCORE_NEEDED = 85.0  # rapidfuzz token sort ratio, 0-100
VERIFIED_AT_ONCE = 100_000  # candidate pairs scored in one rapidfuzz call
NO_GROUP = -1

# (stage, done, total): stages are "fingerprints", "candidates", "verified"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Anchors:
    """The comments already in groups (arrays of one length)."""

    groups: np.ndarray  # int64: each one's group id
    hashes: np.ndarray  # int64: key_hash of its key
    bands: np.ndarray  # uint64 (n, BANDS): its band keys

    @classmethod
    def none(cls) -> Anchors:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64),
                   np.empty((0, BANDS), np.uint64))

    def __len__(self) -> int:
        return len(self.groups)


@dataclass(frozen=True)
class Placement:
    """Where the new comments go (arrays indexed like the new comments)."""

    groups: np.ndarray  # int64: the existing group joined, or NO_GROUP
    clusters: np.ndarray  # int64: new comments with NO_GROUP and equal cluster share a group
    hashes: np.ndarray  # int64: to store with each new comment
    bands: np.ndarray  # uint64 (n, BANDS): likewise


def close_words(first: str, second: str) -> bool:
    """One word typed two ways: one edit apart (two for words longer than five letters),
    two letters swapped counting as one edit."""
    allowed = 1 if max(len(first), len(second)) <= 5 else 2
    return OSA.distance(first, second, score_cutoff=allowed) <= allowed


def same_point(first: Normalised, second: Normalised, score: float | None = None) -> bool:
    """Whether two comments say the same thing in the same words, up to typos and fillers."""
    if first.guard != second.guard:
        return False
    if score is None:
        score = fuzz.token_sort_ratio(first.shingled, second.shingled)
    if score < SCORE_NEEDED:
        return False
    only_first, only_second = first.words - second.words, second.words - first.words
    return (all(any(close_words(a, b) for b in only_second) for a in only_first)
            and all(any(close_words(b, a) for a in only_first) for b in only_second))


class _Joiner:
    """Union-find over anchors and new comments, where a set holds one existing group at most."""

    def __init__(self, anchor_groups: np.ndarray, newcomers: int) -> None:
        size = len(anchor_groups) + newcomers
        self.parent = list(range(size))
        self.group: dict[int, int] = {}
        first: dict[int, int] = {}
        for index, group in enumerate(anchor_groups.tolist()):
            root = first.setdefault(group, index)
            self.parent[index] = root
            self.group[root] = group

    def find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def join(self, first: int, second: int) -> None:
        a, b = self.find(first), self.find(second)
        if a == b or (a in self.group and b in self.group):
            return
        if b in self.group:
            a, b = b, a
        self.parent[b] = a


def _bucket_pairs(keys: np.ndarray, members: np.ndarray, is_new: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(first of bucket, other) for every bucket of equal keys among `members`, the anchors
    first in each bucket; pairs of two anchors are left out."""
    order = members[np.lexsort((is_new[members], keys[members]))]
    if len(order) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    sorted_keys = keys[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    heads = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    keep = ~starts & is_new[order]
    return heads[keep], order[keep]


def place(
    anchors: Anchors, newcomers: Sequence[Normalised],
    anchor_texts: Callable[[np.ndarray], Sequence[Normalised]],
    progress: Progress | None = None,
) -> Placement:
    """Place the new comments; `anchor_texts(indices)` gives the anchors' texts asked for
    (only those of candidate pairs are asked, so the anchors' texts need not be in memory)."""
    report = progress or (lambda stage, done, total: None)
    count, anchored = len(newcomers), len(anchors)
    hashes = np.fromiter((key_hash(item.key) for item in newcomers), np.int64, count)
    shingled = [item.shingled for item in newcomers]
    bands = np.empty((count, BANDS), np.uint64)
    step = 50_000
    for start in range(0, count, step):
        bands[start:start + step] = band_keys(shingled[start:start + step])
        report("fingerprints", min(count, start + step), count)
    del shingled
    every_hash = np.concatenate((anchors.hashes, hashes))
    is_new = np.concatenate((np.zeros(anchored, bool), np.ones(count, bool)))
    joiner = _Joiner(anchors.groups, count)
    everyone = np.arange(anchored + count)
    heads, others = _bucket_pairs(every_hash, everyone, is_new)
    for head, other in zip(heads.tolist(), others.tolist(), strict=True):
        joiner.join(head, other)  # exact duplicates
    # One comment per distinct key: the first of each run of equal hashes.
    distinct = np.setdiff1d(everyone, others, assume_unique=True)
    every_band = np.concatenate((anchors.bands, bands))
    found_heads, found_others = [], []
    for band in range(BANDS):
        head, other = _bucket_pairs(every_band[:, band], distinct, is_new)
        found_heads.append(head)
        found_others.append(other)
    del every_band
    pairs = np.unique(np.stack((np.concatenate(found_heads), np.concatenate(found_others)),
                               axis=1), axis=0) if found_heads else np.empty((0, 2), np.int64)
    report("candidates", len(pairs), len(pairs))
    accepted: list[tuple[float, int, int]] = []
    for start in range(0, len(pairs), VERIFIED_AT_ONCE):
        chunk = pairs[start:start + VERIFIED_AT_ONCE]
        texts = _texts(chunk, anchored, newcomers, anchor_texts)
        scores = cpdist([texts[a].shingled for a in chunk[:, 0].tolist()],
                        [texts[b].shingled for b in chunk[:, 1].tolist()],
                        scorer=fuzz.token_sort_ratio, score_cutoff=SCORE_NEEDED, workers=-1)
        for (a, b), score in zip(chunk.tolist(), scores.tolist(), strict=True):
            if score >= SCORE_NEEDED and same_point(texts[a], texts[b], score):
                accepted.append((score, a, b))
        report("verified", min(len(pairs), start + VERIFIED_AT_ONCE), len(pairs))
    accepted.sort(key=lambda found: -found[0])
    for _score, a, b in accepted:
        joiner.join(a, b)
    roots = [joiner.find(anchored + index) for index in range(count)]
    return Placement(
        np.fromiter((joiner.group.get(root, NO_GROUP) for root in roots), np.int64, count),
        np.array(roots, dtype=np.int64), hashes, bands)


def _texts(pairs: np.ndarray, anchored: int, newcomers: Sequence[Normalised],
           anchor_texts: Callable[[np.ndarray], Sequence[Normalised]]
           ) -> dict[int, Normalised]:
    wanted = np.unique(pairs)
    asked = wanted[wanted < anchored]
    texts = dict(zip(asked.tolist(), anchor_texts(asked), strict=True)) if len(asked) else {}
    texts.update((index, newcomers[index - anchored])
                 for index in wanted[wanted >= anchored].tolist())
    return texts
