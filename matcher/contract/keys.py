"""One rule for comparing free-text category values.

Organisations, organisation types, local systems, interests and project topics are typed by
people, so "Surrey Heartlands", "surrey-heartlands" and "SURREY  HEARTLANDS" must be one
value. :func:`category_key` is the single rule every part of matcher uses to compare them
(scoring, the learning-set distance and the one-organisation-per-set rule, placement's
organisation counts); the independent verifier re-states the same rule in its own code.

Values that are *near* but not equal after that rule ("Surrey Heartland") are never merged:
:mod:`matcher.intake.spelling` reports them so a person can fix the file.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NOT_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=1 << 16)
def category_key(text: str) -> str:
    """The comparison key of a category value: Unicode-normalised (NFKC), case-folded, every
    run of spaces, punctuation and underscores made one space, trimmed.

    ``category_key("Surrey Heartlands") == category_key("surrey-heartlands") ==
    "surrey heartlands"``. A value made only of punctuation keeps its case-folded text, so it
    never collapses into the empty key.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    key = " ".join(_NOT_WORD.sub(" ", folded).split())
    return key or " ".join(folded.split())
