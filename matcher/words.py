"""Words for people: counts with the right plural ("1 pair", "2 pairs", "1 person", "3 people").

Every message that puts a number before a noun goes through :func:`count`, so that no reader
meets "1 people" or "all 2 compatible". Imports nothing from matcher (bottom layer)."""

from __future__ import annotations

#: Irregular plurals of the nouns our messages count; the rest take "s" (or "es" after s/x/ch/sh).
IRREGULAR = {
    "person": "people",
    "change": "changes",
    "is": "are",
    "was": "were",
    "has": "have",
    "its": "their",
    "it": "they",
    "this": "these",
    "that": "those",
}


def plural(word: str, n: int = 2) -> str:
    """``word`` as it goes after the number ``n``: singular for 1 (and -1), plural otherwise."""
    if abs(n) == 1:
        return word
    if word in IRREGULAR:
        return IRREGULAR[word]
    head, _, last = word.rpartition(" ")
    if head:  # "patient leader" -> "patient leaders"; "set of 3" is written by the caller
        return f"{head} {plural(last, n)}"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def count(n: int, word: str, many: str | None = None) -> str:
    """``"1 pair"``, ``"2 pairs"``, ``"1,200 people"``; ``many`` overrides the plural."""
    shown = f"{n:,}"
    if abs(n) == 1:
        return f"{shown} {word}"
    return f"{shown} {many if many is not None else plural(word, n)}"


def listing(items: list[str], limit: int = 10) -> str:
    """``"a, b and c"``; past ``limit`` items, ``"a, b, ... and 7 more"``."""
    if not items:
        return ""
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit:,} more"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]
