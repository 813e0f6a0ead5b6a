"""Similar points in other words: groups whose representative comments are close in TF-IDF
over Vietnamese word segments (underthesea, whose model ships inside the package), clustered
with scikit-learn. Suggestions only: an official looks, and merges or not.

Both libraries are the optional extra `ykien[grouping]`, so a commune's install stays small:
without them `suggest` raises ExtraMissing, and the near-duplicate groups work the same.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from storage.grouping.normalise import normalise
from storage.text import fold

EXTRA = "grouping"  # pip install 'ykien[grouping]'
MOST_GROUPS = 2000  # the largest groups compared (clustering needs their pairwise distances)
DISTANCE = 0.7  # cosine distance under which two groups count as one point
TOP_TERMS = 5


class ExtraMissing(RuntimeError):
    """The optional extra is not installed (its missing module is named)."""

    def __init__(self, module: str) -> None:
        super().__init__(f"pip install 'ykien[{EXTRA}]' (missing: {module})")
        self.module = module


@dataclass(frozen=True)
class GroupText:
    group_id: int
    text: str  # its representative comment
    size: int


@dataclass(frozen=True)
class Suggestion:
    group_ids: tuple[int, ...]  # two or more, the largest first
    label: str  # the text of the most representative group (nearest the cluster's centre)
    terms: tuple[str, ...]  # the heaviest words of the cluster


def available() -> str | None:
    """None when the extra is installed, else the name of a missing module."""
    try:
        import sklearn  # noqa: F401
        import underthesea  # noqa: F401
    except ImportError as error:
        return error.name or "underthesea"
    return None


# underthesea loads its model on first use without a lock: two runs segmenting at once (two
# drafts grouped together on one server) could see it half loaded. One at a time.
_SEGMENTING = threading.Lock()


def segmented(text: str) -> str:
    """The text as words (underthesea: "thu_gom rác"), each folded, so that typing without
    diacritics finds the same terms."""
    from underthesea import word_tokenize

    with _SEGMENTING:
        words = word_tokenize(text)
    return " ".join(fold(word).replace(" ", "_") for word in words if fold(word))


def suggest(groups: Sequence[GroupText]) -> list[Suggestion]:
    """Clusters of two or more of the largest groups; ExtraMissing without the extra."""
    missing = available()
    if missing is not None:
        raise ExtraMissing(missing)
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    chosen = sorted(groups, key=lambda group: -group.size)[:MOST_GROUPS]
    documents = [segmented(group.text) for group in chosen]
    if sum(1 for document in documents if document) < 2:
        return []
    vectorizer = TfidfVectorizer(token_pattern=r"[^\s]+", sublinear_tf=True)
    matrix = vectorizer.fit_transform(documents)
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=DISTANCE, metric="cosine", linkage="average",
    ).fit_predict(matrix.toarray())
    terms = vectorizer.get_feature_names_out()
    # Words alike say opposite things when a negation or a number differs ("không nên",
    # "20 nghìn"): such groups are never suggested together.
    guards = [normalise(group.text).guard for group in chosen]
    found = []
    for cluster, guard in sorted({(int(label), guards[i]) for i, label in enumerate(labels)}):
        members = np.flatnonzero((labels == cluster)
                                 & np.array([g == guard for g in guards], dtype=bool))
        if len(members) < 2:
            continue
        centre = np.asarray(matrix[members].mean(axis=0)).ravel()
        nearest = members[int(np.argmax(matrix[members] @ centre))]
        heaviest = [terms[i].replace("_", " ") for i in np.argsort(-centre)[:TOP_TERMS]
                    if centre[i] > 0]
        found.append(Suggestion(tuple(chosen[i].group_id for i in members),
                                chosen[nearest].text, tuple(heaviest)))
    return sorted(found, key=lambda suggestion: -len(suggestion.group_ids))
