"""Grouping a draft's comments so an official answers each point once.

One job per module: `normalise` (what two texts have in common once diacritics, case,
punctuation, spacing and word order are set aside), `signatures` (MinHash with banding, in
numpy, so a million comments fit in minutes and bounded memory), `near` (exact duplicates by
hash, then LSH candidates verified with rapidfuzz, joined into groups), `similar` (the
optional TF-IDF suggestions, `ykien[grouping]`), and `job` (the incremental run over the
database, with progress). The tables and the hand corrections are storage.groups'.
"""
