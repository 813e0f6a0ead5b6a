"""MinHash signatures with banding, computed in numpy a batch at a time.

Each text (normalise.Normalised.shingled) is cut into character 3-grams of its UTF-8 bytes;
each of PERMUTATIONS multiply-shift hashes keeps its smallest value over the 3-grams; the
signature is then cut into BANDS bands of ROWS values, each band folded into one 64-bit key.
Two texts sharing a band key are candidates (LSH): with Jaccard similarity s they share at
least one with probability 1 - (1 - s^ROWS)^BANDS (0.92 at s = 0.7, 0.10 at s = 0.3).

Fewer permutations than datasketch's default 128 (40) and no Python loop per 3-gram keep a
million comments within minutes; the hashes are fixed, so keys stored for earlier comments
match those of new ones in any later process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SHINGLE = 3  # bytes
BANDS = 10
ROWS = 4
PERMUTATIONS = BANDS * ROWS
BATCH = 2048  # texts hashed at once: about 60 MB of intermediate values at most
KEY_BYTES = BANDS * 8  # one comment's band keys, as stored

_SEED = 0x59_4B_49_45_4E  # "YKIEN": fixed forever, or stored keys stop matching
_random = np.random.default_rng(_SEED)
_MULTIPLIERS = (_random.integers(1, 2**63, PERMUTATIONS, dtype=np.uint64) * np.uint64(2)
                + np.uint64(1))  # odd
_ADDENDS = _random.integers(0, 2**63, PERMUTATIONS, dtype=np.uint64)
_ROW_MIXERS = (_random.integers(1, 2**63, ROWS, dtype=np.uint64) * np.uint64(2) + np.uint64(1))


def band_keys(texts: Sequence[str]) -> np.ndarray:
    """The band keys of each text: an array of shape (len(texts), BANDS), uint64."""
    keys = np.empty((len(texts), BANDS), dtype=np.uint64)
    for start in range(0, len(texts), BATCH):
        batch = texts[start:start + BATCH]
        keys[start:start + len(batch)] = _bands(_signatures(batch))
    return keys


def _signatures(texts: Sequence[str]) -> np.ndarray:
    encoded = [text.encode().ljust(SHINGLE) for text in texts]
    lengths = np.fromiter((len(chunk) for chunk in encoded), dtype=np.int64, count=len(encoded))
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
    grams = (data[:-2] << np.uint64(16)) | (data[1:-1] << np.uint64(8)) | data[2:]
    counts = lengths - (SHINGLE - 1)  # 3-grams of each text, none across two texts
    text_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    gram_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    within = np.arange(int(counts.sum())) - np.repeat(gram_starts, counts)
    shingles = grams[np.repeat(text_starts, counts) + within]
    with np.errstate(over="ignore"):  # multiply-shift hashing wraps around on purpose
        hashed = (shingles[:, None] * _MULTIPLIERS[None, :] + _ADDENDS[None, :]) >> np.uint64(32)
    return np.minimum.reduceat(hashed, gram_starts, axis=0)


def _bands(signatures: np.ndarray) -> np.ndarray:
    rows = signatures.reshape(len(signatures), BANDS, ROWS)
    with np.errstate(over="ignore"):
        mixed = rows * _ROW_MIXERS[None, None, :]
        keys = mixed[:, :, 0]
        for row in range(1, ROWS):
            keys = (keys ^ (keys >> np.uint64(29))) * _ROW_MIXERS[0] + mixed[:, :, row]
    return keys


def to_bytes(keys: np.ndarray) -> bytes:
    """One comment's band keys as stored (KEY_BYTES, little-endian)."""
    return keys.astype("<u8").tobytes()


def from_bytes(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored band keys back as an array of shape (len(blobs), BANDS)."""
    if not blobs:
        return np.empty((0, BANDS), dtype=np.uint64)
    return np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.uint64).reshape(-1, BANDS)
