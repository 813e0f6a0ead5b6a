"""What a comment says once the way it was typed is set aside: diacritics (đ too), case,
punctuation, spacing and word order (storage.text.fold, then the words sorted).

Two texts whose `key` is equal are exact duplicates. `guard` holds what must never differ
between two comments grouped as the same point, however alike the rest: a negation
("nên" and "không nên" say opposite things) and the numbers ("10 nghìn" is not "20 nghìn").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from storage.text import fold

# Folded Vietnamese negations, with the short forms typed in chats (ko, k, hok...); not
# "hông" (its folded form is also "hỏng", broken, common in complaints).
NEGATIONS = frozenset({"khong", "ko", "k", "kh", "kg", "khg", "hok", "chang", "chua", "dung",
                       "cam", "no"})
# Words that add nothing to a point ("nhé", "ạ", "vào"...; not those that fold into a word
# that matters, as "tối" and "tôi" both fold into "toi"): ignored when comparing two texts
# word by word and when shingling, kept in the exact key.
FILLERS = frozenset({"a", "ah", "nhe", "nha", "oi", "vao", "la", "thi", "va", "ma", "cua",
                     "cac", "nhung", "rat", "ne", "ha", "vay", "voi", "o", "duoc", "em", "xin",
                     "gop", "y", "kien"})


@dataclass(frozen=True, slots=True)
class Normalised:
    # A million of these are held at once by a large grouping: two fields, nothing derived.
    key: str  # folded words, sorted: equal keys are exact duplicates
    guard: tuple[str, ...]  # negations and numbers: must be equal to group two texts

    @property
    def words(self) -> frozenset[str]:
        """The folded words but fillers."""
        return frozenset(word for word in self.key.split() if word not in FILLERS)

    @property
    def shingled(self) -> str:
        """The text the MinHash signature is taken over: the words but fillers, sorted."""
        return " ".join(word for word in self.key.split() if word not in FILLERS) or self.key


def normalise(text: str) -> Normalised:
    folded = fold(text).split()
    guard = tuple(sorted({word for word in folded
                          if word in NEGATIONS or any(ch.isdigit() for ch in word)}))
    return Normalised(" ".join(sorted(folded)), guard)


def key_hash(key: str) -> int:
    """A stable signed 64-bit hash of a key (the same in every process, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big",
                          signed=True)
