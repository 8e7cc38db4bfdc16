"""The plan as one self-contained HTML page for a programme team (``matcher report``,
``matcher solve -o plan.html``).

The page makes no network request: styles are inline, charts are inline SVG drawn by
matplotlib with text as paths (no fonts to fetch), and there is no script. It reads the plan
in words (led by "What changed" when the plan is a re-plan: the change list with the people's
names and each reason), one card per cohort (dates, venue, sets and members), the pairs with
score bars and reasons, the unmatched and wait-listed with reasons, and charts: the score
distribution, score by cohort, mean score by organisation type, role and local system (groups under
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

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from matcher.contract.instance import CRITERIA
from matcher.contract.solution import MIN_GROUP  # groups under it are not charted
from matcher.render.view import CRITERION_LABELS, PlanView
from matcher.text import html_text

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
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
    if isinstance(value, str) and not isinstance(value, Markup):
        return html_text(value)
    return value


def _env() -> Any:
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
            changed=view.change_sentences(),
            changes=view.change_rows(),
            cohorts=cohorts,
            pairs=pairs,
            unmatched=[(u, view.person(u.participant)) for u in s.unmatched],
            waitlist=[(w, *view.members(view.pairs[w.pair])) for w in s.waitlist],
            charts=plan_charts(view),
            groups=s.metrics.groups if s.metrics is not None else [],
            criteria=[(k, CRITERION_LABELS[k]) for k in CRITERIA],
            redacted=view.redact,
        )
    )


# --------------------------------------------------------------------------- charts


def _svg(fig: Any) -> str:
    """A figure as inline SVG: no XML prolog, no comments, text as paths, stable IDs made
    unique on the page (each chart's IDs carry a prefix taken from its own content)."""
    import matplotlib  # lazy: matplotlib (~0.5 s), once a chart is drawn

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "matcher"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"<!--.*?-->\s*", "", text[text.index("<svg") :], flags=re.S)
    prefix = "g" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="', f'id="{prefix}', text)
    return re.sub(r'(url\(#|href="#)', rf"\g<1>{prefix}", text)


def _figure(height: float = 2.8) -> Any:
    from matplotlib.figure import Figure  # lazy: matplotlib (~0.5 s), once a chart is drawn

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


def _arm(row: dict[str, Any], variants: bool) -> str:
    return f"{row['variant']} / {row['objective']}" if variants else str(row["objective"])


def _legend_below(fig: Any, entries: int) -> None:
    """The legend under the axes, never over the bars."""
    fig.legend(loc="outside lower center", ncols=min(entries, 3), frameon=False)


def bench_report(result: Any) -> str:
    """The page of a :class:`matcher.tools.bench.BenchResult`: every run judged (placed,
    bound, gap, left out, status), each variant or objective against the baseline with the
    difference in each measure, outcomes by group, quality over time across dated intakes,
    quality per cohort, and charts (negative differences drawn left of zero)."""
    runs = result.runs
    variants = len({r["variant"] for r in runs}) > 1
    arms = list(dict.fromkeys(_arm(r, variants) for r in runs))
    summary = [dict(r, arm=_arm(r, variants)) for r in result.summary()]
    measures = [m for m, _, _ in result.measures]
    units = {m: u for m, _, u in result.measures}
    compared: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result.comparison_summary():
        key = (r["instance"], _arm(r, variants))
        compared.setdefault(key, {"instance": r["instance"], "arm": key[1], "cells": {}})
        compared[key]["cells"][r["measure"]] = r
    groups = [dict(r, arm=_arm(r, variants)) for r in result.group_summary()]
    fields = list(dict.fromkeys(r["field"] for r in groups))
    over_time = _over_time(result, variants)
    return str(
        _env()
        .get_template("bench.html.j2")
        .render(
            title="Benchmark report",
            summary=summary,
            variants=variants,
            arms=arms,
            baseline=" / ".join(result.baseline) if result.baseline else None,
            measures=measures,
            units=units,
            compared=list(compared.values()),
            groups=groups,
            fields=fields,
            over_time=over_time,
            cohorts=[dict(r, arm=_arm(r, variants)) for r in result.cohort_summary()],
            no_plan=result.failed,
            failed=[r for r in runs if r["status"] in ("optimal", "feasible")
                    and not r["verified"]],
            charts=bench_charts(result, variants, over_time),
        )
    )  # fmt: skip


def _over_time(result: Any, variants: bool) -> list[dict[str, Any]]:
    """Per dated intake (oldest first) and arm: mean over seeds of the share of people
    placed, people left out, mean score and worst new pair; empty with fewer than two dates."""
    rows = [r for r in result.summary() if r.get("intake_date")]
    if len({r["intake_date"] for r in rows}) < 2:
        return []
    participants: dict[str, float] = {}
    for run in result.runs:
        if run["participants"]:
            participants[run["file"]] = float(run["participants"])
    out = []
    for r in sorted(rows, key=lambda r: (r["intake_date"], r["instance"])):
        n = participants.get(r["file"])
        placed = r["placed_mean"]
        out.append(
            {
                "date": r["intake_date"],
                "instance": r["instance"],
                "arm": _arm(r, variants),
                "people_placed_share": None if not n or placed is None else 2 * placed / n,
                "left_out": r["left_out_mean"],
                "score_mean": r["score_mean_mean"],
                "worst_new_pair": r["lone_score_min_mean"],
            }
        )
    return out


def _signed_bars(
    title: str, alt: str, labels: list[str], series: dict[str, list[float | None]], unit: str
) -> Chart:
    """Horizontal grouped bars that may be negative: the axis spans both signs, with a line
    at zero."""
    fig, ax = _figure(1.2 + 0.35 * len(labels) * max(len(series), 1) ** 0.5)
    height = 0.8 / max(len(series), 1)
    values = [v for vs in series.values() for v in vs if v is not None]
    low, high = min([0.0, *values]), max([0.0, *values])
    span = max(high - low, 1e-9)
    lo, hi = low - 0.1 * span - (0.5 if span < 1e-6 else 0), high + 0.1 * span + 1e-6
    ax.set_xlim(lo, hi)
    for k, (name, vs) in enumerate(series.items()):
        y = np.arange(len(labels)) + k * height
        ax.barh(y, [v if v is not None else 0.0 for v in vs], height,
                color=OKABE_ITO[k % len(OKABE_ITO)], label=name)  # fmt: skip
    ax.axvline(0.0, color="#000000", linewidth=0.8)
    ax.set_yticks(np.arange(len(labels)) + 0.4 - height / 2, [_label(x) for x in labels])
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    if len(series) > 1:
        _legend_below(fig, len(series))
    return Chart(title, alt, _svg(fig), note=f"{lo:.6g} to {hi:.6g}")


def bench_charts(
    result: Any, variants: bool = False, over_time: list[dict[str, Any]] | None = None
) -> list[Chart]:
    """Mean pair score per cohort (one chart per intake); each run against the baseline
    (people left out, in people; total score, in percent; both signed); share placed per
    group; quality over time across dated intakes."""
    charts: list[Chart] = []
    cohort_rows = result.cohort_summary()
    arms = list(dict.fromkeys(_arm(r, variants) for r in result.runs))
    for file in dict.fromkeys(r["file"] for r in cohort_rows):
        rows = [r for r in cohort_rows if r["file"] == file and r["score_mean"] is not None]
        cohorts = list(dict.fromkeys(r["cohort"] for r in rows))[: MAX_BARS * 2]
        if not cohorts:
            continue
        fig, ax = _figure(1.2 + 0.35 * len(cohorts))
        height = 0.8 / max(len(arms), 1)
        for k, arm in enumerate(arms):
            values = {r["cohort"]: r["score_mean"] for r in rows if _arm(r, variants) == arm}
            y = np.arange(len(cohorts)) + k * height
            ax.barh(y, [values.get(c, 0.0) or 0.0 for c in cohorts], height,
                    color=OKABE_ITO[k % len(OKABE_ITO)], label=_label(arm))  # fmt: skip
        ax.set_yticks(np.arange(len(cohorts)) + 0.4 - height / 2, [_label(c) for c in cohorts])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean pair score in the cohort (0 to 1), mean over seeds")
        _legend_below(fig, len(arms))
        name = rows[0]["instance"]
        charts.append(
            Chart(
                f"Quality per cohort: {name}",
                f"Grouped bar chart of the mean pair score in each of {len(cohorts)} cohorts of "
                f"{name}, one bar per {'variant' if variants else 'objective'} "
                f"({', '.join(arms)}).",
                _svg(fig),
            )
        )
    compared = result.comparison_summary()
    if compared and result.baseline is not None:
        base = " / ".join(result.baseline)
        labels = list(dict.fromkeys(f"{r['instance']}: {_arm(r, variants)}" for r in compared))

        def series(measure: str, scale: float = 1.0, *, relative: bool = False) -> list[Any]:
            got = {}
            for r in compared:
                if r["measure"] != measure or r["difference"] is None:
                    continue
                value = r["difference"]
                if relative:
                    b = r["baseline_value"]
                    value = None if not b else 100.0 * value / b
                got[f"{r['instance']}: {_arm(r, variants)}"] = value
            return [got.get(x) for x in labels]

        charts.append(
            _signed_bars(
                f"People left out against the baseline ({base})",
                "Bar chart, per intake and run, of the difference in people left out "
                "(unmatched, plus both members of each wait-listed pair) against the baseline, "
                "mean over seeds; right of zero: more people left out.",
                labels,
                {"people left out": series("people left out")},
                "difference in people left out (people), run minus baseline",
            )
        )
        charts.append(
            _signed_bars(
                f"Total score against the baseline ({base})",
                "Bar chart, per intake and run, of the change in total pair score against the "
                "baseline in percent of the baseline's total, mean over seeds; left of zero: "
                "score given up (the price of fairness or stability), right of zero: more "
                "score, which can come with fewer people placed.",
                labels,
                {"total score": series("total score", relative=True)},
                "change in total pair score (% of the baseline's total)",
            )
        )
    groups = [r for r in result.group_summary() if not r["suppressed"]]
    hidden = sum(1 for r in result.group_summary() if r["suppressed"])
    for field in dict.fromkeys(r["field"] for r in groups):
        mine = [r for r in groups if r["field"] == field]
        names = list(dict.fromkeys(r["value"] for r in mine))[:MAX_BARS]
        fig, ax = _figure(1.2 + 0.3 * len(names) * max(len(arms), 1) ** 0.5)
        height = 0.8 / max(len(arms), 1)
        for k, arm in enumerate(arms):
            means: dict[str, list[float]] = defaultdict(list)
            for r in mine:
                if _arm(r, variants) == arm and r["placed_share"] is not None:
                    means[r["value"]].append(100.0 * r["placed_share"])
            y = np.arange(len(names)) + k * height
            ax.barh(y, [statistics.fmean(means[v]) if v in means else 0.0 for v in names],
                    height, color=OKABE_ITO[k % len(OKABE_ITO)], label=_label(arm))  # fmt: skip
        ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, [_label(v) for v in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("people placed (% of the group), mean over seeds and intakes")
        if len(arms) > 1:
            _legend_below(fig, len(arms))
        charts.append(
            Chart(
                f"People placed by {field.replace('_', ' ')}",
                f"Bar chart of the share of each {field.replace('_', ' ')} group placed in a "
                f"cohort, per {'variant' if variants else 'objective'}; "
                f"{hidden} small groups (all fields) suppressed and not drawn.",
                _svg(fig),
            )
        )
    if over_time:
        dates = list(dict.fromkeys(r["date"] for r in over_time))
        for key, label, unit in (
            ("people_placed_share", "Share of people placed", "people placed (% of intake)"),
            ("score_mean", "Mean pair score", "mean pair score (0 to 1)"),
        ):
            fig, ax = _figure(3.0)
            for k, arm in enumerate(dict.fromkeys(r["arm"] for r in over_time)):
                pts = {r["date"]: r[key] for r in over_time if r["arm"] == arm}
                xs = [i for i, d in enumerate(dates) if pts.get(d) is not None]
                ys = [pts[dates[i]] * (100 if key == "people_placed_share" else 1) for i in xs]
                ax.plot(xs, ys, marker="o", color=OKABE_ITO[k % len(OKABE_ITO)],
                        label=_label(arm))  # fmt: skip
            ax.set_xticks(range(len(dates)), dates)
            ax.set_ylabel(unit)
            _legend_below(fig, len({r["arm"] for r in over_time}))
            charts.append(
                Chart(
                    f"{label} over time",
                    f"Line chart of the {label.lower()} in each intake, by intake date "
                    f"({dates[0]} to {dates[-1]}), one line per "
                    f"{'variant' if variants else 'objective'}, mean over seeds.",
                    _svg(fig),
                )
            )
    return charts
