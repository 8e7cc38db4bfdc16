"""The plan as one self-contained HTML page for a programme team (``matcher report``,
``matcher solve -o plan.html``).

The page makes no network request: styles are inline, charts are inline SVG drawn by
matplotlib with text as paths (no fonts to fetch), and there is no script. It reads the plan
in words, one card per cohort (dates, venue, sets and members), the pairs with score bars and
reasons, the unmatched and wait-listed with reasons, and charts: the score distribution, score
by cohort, mean score by organisation type, role and local system (groups under
:data:`MIN_GROUP` people suppressed) and set diversity. Colours are the Okabe-Ito palette
(distinguishable with colour-blindness) and every chart has a text alternative. Print CSS lays
it out for A4.

Everything shown is escaped by Jinja2's autoescaping, after its control, bidi and NUL
characters are shown as escapes (:func:`matcher.text.html_text`); names and emails come only from
:class:`~matcher.render.view.PlanView` and are left out with ``redact``.
"""

from __future__ import annotations

import hashlib
import io
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from matcher.contract.instance import CRITERIA
from matcher.render.view import CRITERION_LABELS, PlanView
from matcher.text import html_text

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
#: Groups with fewer people are not charted (small groups could identify people).
MIN_GROUP = 5
#: Most bars in one chart (the largest groups are kept, the rest counted in the caption).
MAX_BARS = 25


@dataclass(frozen=True)
class Chart:
    title: str
    alt: str
    svg: str
    note: str = ""


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` value of a template: text from the input has its control, bidi and other
    invisible format characters (NUL, U+202E ...) shown escaped before autoescaping; markup the
    program made (the charts' SVG) is left as it is."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return html_text(value)
    return value


def _env() -> Any:
    # Loaded on use (start-up time): jinja2 is slow to import.
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("matcher.render", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )


def plan_report(view: PlanView) -> str:
    """The page's HTML."""
    s = view.solution
    cohorts = []
    for plan in s.cohorts or []:
        c = view.cohorts[plan.id]
        sets = []
        by_set: dict[str, list[str]] = defaultdict(list)
        for pid in plan.pairs:
            by_set[view.pairs[pid].learning_set or "(no set)"].append(pid)
        diversity = {x.id: x.diversity for x in s.learning_sets or []}
        for set_id, pids in sorted(by_set.items()):
            sets.append(
                {
                    "id": set_id,
                    "diversity": diversity.get(set_id),
                    "pairs": [(view.pairs[p], *view.members(view.pairs[p])) for p in pids],
                }
            )
        cohorts.append({"plan": plan, "about": c, "sets": sets})
    pairs = [(p, *view.members(p), view.cohort(p.cohort)) for p in s.pairs]
    return str(
        _env()
        .get_template("plan.html.j2")
        .render(
            title=f"Plan for {s.instance}",
            view=view,
            solution=s,
            summary=view.summary_sentences(),
            cohorts=cohorts,
            pairs=pairs,
            unmatched=[(u, view.person(u.participant)) for u in s.unmatched],
            waitlist=[(w, *view.members(view.pairs[w.pair])) for w in s.waitlist],
            charts=plan_charts(view),
            criteria=[(k, CRITERION_LABELS[k]) for k in CRITERIA],
            redacted=view.redact,
        )
    )


# --------------------------------------------------------------------------- charts


def _svg(fig: Any) -> str:
    """A figure as inline SVG: no XML prolog, no comments, text as paths, stable IDs made
    unique on the page (each chart's IDs carry a prefix taken from its own content)."""
    # Loaded on use (start-up time): matplotlib is slow to import.
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "matcher"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"<!--.*?-->\s*", "", text[text.index("<svg") :], flags=re.S)
    prefix = "g" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="', f'id="{prefix}', text)
    return re.sub(r'(url\(#|href="#)', rf"\g<1>{prefix}", text)


def _figure(height: float = 2.8) -> Any:
    # Loaded on use (start-up time): matplotlib is slow to import.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, height), dpi=72, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _label(text: str) -> str:
    """Chart labels are plain text (a '$' would start mathtext)."""
    text = text.replace("$", r"\$")
    return text if len(text) <= 40 else text[:39] + "…"


def _bars(title: str, groups: dict[str, list[float]], what: str) -> Chart | None:
    """Mean score per group, groups under MIN_GROUP people suppressed."""
    kept = {k: v for k, v in groups.items() if len(v) >= MIN_GROUP}
    hidden = len(groups) - len(kept)
    if not kept:
        return None
    order = sorted(kept, key=lambda k: (-len(kept[k]), k))[:MAX_BARS]
    cut = len(kept) - len(order)
    order.sort(key=lambda k: statistics.fmean(kept[k]))
    means = [statistics.fmean(kept[k]) for k in order]
    fig, ax = _figure(0.9 + 0.28 * len(order))
    ax.barh(range(len(order)), means, color=OKABE_ITO[0])
    ax.set_yticks(range(len(order)), [f"{_label(k)} ({len(kept[k])})" for k in order])
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean pair score (0 to 1); people per group in brackets")
    for i, m in enumerate(means):
        ax.text(min(m + 0.01, 0.93), i, f"{m:.2f}", va="center", fontsize=8)
    notes = []
    if hidden:
        notes.append(f"{hidden} groups with fewer than {MIN_GROUP} people are not shown")
    if cut:
        notes.append(f"{cut} smaller groups are not shown")
    best, worst = order[-1], order[0]
    alt = (
        f"Bar chart of mean pair score by {what} for {len(order)} groups: highest "
        f"{best} at {statistics.fmean(kept[best]):.2f}, lowest {worst} at "
        f"{statistics.fmean(kept[worst]):.2f}."
    )
    return Chart(title, alt, _svg(fig), "; ".join(notes))


def plan_charts(view: PlanView) -> list[Chart]:
    """The report's charts, in page order (a chart with no data is left out)."""
    s = view.solution
    charts: list[Chart] = []
    if s.pairs:
        matched = [p.score for p in s.pairs if not p.preformed]
        together = [p.score for p in s.pairs if p.preformed]
        fig, ax = _figure()
        bins = [i / 20 for i in range(21)]
        ax.hist(
            [together, matched],
            bins=bins,
            stacked=True,
            color=[OKABE_ITO[1], OKABE_ITO[0]],
            label=["applied together", "matched"],
        )
        ax.set_xlabel("pair score (0 to 1)")
        ax.set_ylabel("pairs")
        ax.legend(frameon=False)
        scores = [p.score for p in s.pairs]
        charts.append(
            Chart(
                "Score distribution",
                f"Histogram of {len(scores)} pair scores ({len(matched)} matched, "
                f"{len(together)} applied together): median {statistics.median(scores):.2f}, "
                f"lowest {min(scores):.2f}, highest {max(scores):.2f}.",
                _svg(fig),
            )
        )
    by_cohort: dict[str, list[float]] = defaultdict(list)
    for p in s.pairs:
        if p.cohort:
            by_cohort[p.cohort].append(p.score)
    if by_cohort:
        order = [c for c in view.cohorts if c in by_cohort][: MAX_BARS * 2]
        fig, ax = _figure(0.9 + 0.28 * len(order))
        ax.boxplot(
            [by_cohort[c] for c in order],
            orientation="horizontal",
            widths=0.6,
            patch_artist=True,
            boxprops={"facecolor": OKABE_ITO[4]},
            medianprops={"color": OKABE_ITO[7]},
        )
        ax.set_yticks(range(1, len(order) + 1), [_label(c) for c in order])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("pair score (0 to 1): box = middle half, line = median")
        medians = {c: statistics.median(by_cohort[c]) for c in order}
        charts.append(
            Chart(
                "Score by cohort",
                f"Box plot of pair scores in {len(order)} cohorts; medians from "
                f"{min(medians.values()):.2f} to {max(medians.values()):.2f}.",
                _svg(fig),
            )
        )
    groups: dict[str, dict[str, list[float]]] = {
        "organisation type": defaultdict(list),
        "role": defaultdict(list),
        "local system": defaultdict(list),
    }
    spelling: dict[str, str] = {}
    for p in s.pairs:
        for person in view.members(p):
            for what, value in (
                ("organisation type", person.organisation_type),
                ("role", person.role),
                ("local system", person.system),
            ):
                key = view.group_key(value)
                spelling.setdefault(key, value)
                groups[what][spelling[key]].append(p.score)
    for what, g in groups.items():
        chart = _bars(f"Mean score by {what}", g, what)
        if chart is not None:
            charts.append(chart)
    diversity = [x.diversity for x in s.learning_sets or [] if x.diversity is not None]
    if diversity:
        fig, ax = _figure()
        ax.hist(diversity, bins=[i / 20 for i in range(21)], color=OKABE_ITO[2])
        ax.set_xlabel("set diversity: mean distance between its pairs (0 alike, 1 all different)")
        ax.set_ylabel("sets")
        charts.append(
            Chart(
                "Set diversity",
                f"Histogram of the diversity of {len(diversity)} action-learning sets: "
                f"median {statistics.median(diversity):.2f}, lowest {min(diversity):.2f}.",
                _svg(fig),
            )
        )
    return charts


# --------------------------------------------------------------------------- benchmarks


def bench_report(result: Any) -> str:
    """The page of a :class:`matcher.tools.bench.BenchResult`: objectives and seeds side by side,
    the price of fairness and of stability, and quality per cohort."""
    runs = result.runs
    objectives = list(dict.fromkeys(r["objective"] for r in runs))
    instances = list(dict.fromkeys((r["file"], r["instance"]) for r in runs))
    side_by_side = []
    for file, name in instances:
        for seed in sorted({r["seed"] for r in runs if r["file"] == file}):
            cells = {r["objective"]: r for r in runs if r["file"] == file and r["seed"] == seed}
            side_by_side.append({"instance": name, "seed": seed, "cells": cells})
    return str(
        _env()
        .get_template("bench.html.j2")
        .render(
            title="Benchmark report",
            summary=result.summary(),
            cohorts=result.cohort_summary(),
            objectives=objectives,
            side_by_side=side_by_side,
            prices=[r for r in runs if r["price_of_fairness"] is not None
                    or r["price_of_stability"] is not None],
            failed=[r for r in runs if not r["verified"]],
            charts=bench_charts(result, objectives),
        )
    )  # fmt: skip


def bench_charts(result: Any, objectives: list[str]) -> list[Chart]:
    """Mean pair score per cohort and objective (one chart per intake), and the price of
    fairness and stability per intake."""
    # Loaded on use (start-up time): numpy is slow to import.
    import numpy as np

    charts: list[Chart] = []
    cohort_rows = result.cohort_summary()
    for file in dict.fromkeys(r["file"] for r in cohort_rows):
        rows = [r for r in cohort_rows if r["file"] == file and r["score_mean"] is not None]
        cohorts = list(dict.fromkeys(r["cohort"] for r in rows))[: MAX_BARS * 2]
        if not cohorts:
            continue
        fig, ax = _figure(1.2 + 0.35 * len(cohorts))
        height = 0.8 / max(len(objectives), 1)
        for k, objective in enumerate(objectives):
            values = {r["cohort"]: r["score_mean"] for r in rows if r["objective"] == objective}
            y = np.arange(len(cohorts)) + k * height
            ax.barh(y, [values.get(c, 0.0) or 0.0 for c in cohorts], height,
                    color=OKABE_ITO[k % len(OKABE_ITO)], label=objective)  # fmt: skip
        ax.set_yticks(np.arange(len(cohorts)) + 0.4 - height / 2, [_label(c) for c in cohorts])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean pair score in the cohort (0 to 1), mean over seeds")
        ax.legend(frameon=False, loc="lower right")
        name = rows[0]["instance"]
        charts.append(
            Chart(
                f"Quality per cohort: {name}",
                f"Grouped bar chart of the mean pair score in each of {len(cohorts)} cohorts of "
                f"{name}, one bar per objective ({', '.join(objectives)}).",
                _svg(fig),
            )
        )
    prices: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in result.runs:
        for key in ("price_of_fairness", "price_of_stability"):
            if r[key] is not None:
                prices[r["instance"]][key].append(float(r[key]))
    if prices:
        names = list(prices)
        fig, ax = _figure(1.2 + 0.4 * len(names))
        top = max((v for n in names for vs in prices[n].values() for v in vs), default=0.0)
        ax.set_xlim(0, max(top * 1.15, 0.05))
        for k, key in enumerate(("price_of_fairness", "price_of_stability")):
            lost = [statistics.fmean(prices[n][key]) if prices[n][key] else 0.0 for n in names]
            ax.barh(np.arange(len(names)) + k * 0.4, lost, 0.4, color=OKABE_ITO[k + 1],
                    label=key.replace("_", " "))  # fmt: skip
        ax.set_yticks(np.arange(len(names)) + 0.2, [_label(n) for n in names])
        ax.invert_yaxis()
        ax.set_xlabel("share of the total score given up against the total objective")
        ax.legend(frameon=False, loc="lower right")
        charts.append(
            Chart(
                "Price of fairness and of stability",
                "Bar chart, per intake, of the share of total pair score the fair and the "
                "stable objectives give up against the total objective (mean over seeds).",
                _svg(fig),
            )
        )
    return charts
