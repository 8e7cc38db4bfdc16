"""Cohort placement, solved together with the pairing of lone applicants.

Priorities, in order (lexicographic):

(a) the most pairs placed in a cohort (people on the programme);
(b) the most pairs formed (the rest are wait-listed with the reason);
(c) pairing quality: the total compatibility score of the lone pairs;
(d) cohort preferences met, then balance (the fullest cohort as empty as possible).

A pair may go only to a cohort both members can attend in full and in a mode both can attend,
at most ``capacity_pairs`` per cohort, and each cohort's pair count must split into
``s`` sets within ``set_size`` with no set holding two pairs that share an organisation (hard
rule) or two people with a declared conflict: so an organisation may have at most ``s`` pairs
in a cohort, and two conflicting pairs need ``s >= 2``.

Guarantee. First the *decomposition*: an optimal matching of the lone applicants (most pairs,
then highest total) and then an exact CP-SAT placement of all pairs. If that places every pair,
no plan can place or form more pairs nor score higher (the matching is optimal on (b)-(c) and
(a) is at its ceiling), so the plan is optimal on (a)-(c) and on (d) for that pairing. Otherwise
the *joint* CP-SAT model chooses pairs and cohorts together over every allowed lone pair.

The levels are optimised one after another (each held at its optimum while the next is
optimised, the previous plan as the hint). ``status`` is about (a)-(c): ``optimal`` when each
was proven. Level (d) is best effort within ``BALANCE_BUDGET`` seconds; whether it was proven
is reported separately (``balance_proven``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from matcher.schema import Instance
from matcher.scoring import tag

SCORE_SCALE = 1000  # scores are integers in CP-SAT: 3 decimals are kept
#: Seconds (deterministic time in deterministic mode) for level (d), preferences and balance.
BALANCE_BUDGET = 2.0
#: Joint models with more placement variables than this skip CP-SAT's presolve.
PRESOLVE_MAX_VARS = 5_000
#: Seconds per level (a)-(c) when the caller sets no time limit.
DEFAULT_BUDGET = 5.0


@dataclass(frozen=True)
class Candidate:
    """A pair that may be formed: ``fixed`` ones are always formed (pre-formed pairs, or pairs
    an earlier stage chose); the others are optional lone pairs."""

    patient_leader: str
    partner: str
    fixed: bool
    score: float
    cohorts: tuple[int, ...]  # indices of the cohorts both can attend


@dataclass(frozen=True)
class Placement:
    """Which candidates are formed, and where each formed pair is placed (None = wait-list)."""

    formed: list[int]
    cohort_of: dict[int, int | None]
    sets_in: dict[int, int]  # cohort index -> number of action-learning sets planned
    status: str  # optimal | feasible | infeasible | timeout: about levels (a)-(c)
    objective: float | None
    bound: float | None
    balance_proven: bool = False


def set_counts(lo: int, hi: int, n: int) -> list[int]:
    """Numbers of sets ``s`` into which ``n`` pairs split with ``lo..hi`` pairs per set."""
    return [s for s in range(0, n + 1) if s * lo <= n <= s * hi]


def solve_placement(
    instance: Instance,
    candidates: list[Candidate],
    *,
    seed: int = 0,
    time_limit: float | None = None,
    deterministic: bool = True,
    hint: dict[tuple[str, str], int | None] | None = None,
    default_budget: float = 0.0,
) -> Placement:
    """Choose the formed pairs among ``candidates`` and their cohorts (see module docstring).

    Each level (a)-(c) gets ``time_limit`` seconds, or ``default_budget`` (``DEFAULT_BUDGET``
    when 0) when the caller set none.

    ``hint`` maps (patient leader, professional) of a known plan to its cohort (or None):
    CP-SAT starts from it (the joint model starts from the decomposition's plan).

    Fixed candidates are always formed; the others are formed at most once per
    person. With ``deterministic``, CP-SAT runs one worker with a fixed seed and a
    deterministic-time budget, so the result does not depend on machine load.
    """
    people = instance.participants_by_id()
    cohorts = instance.cohorts
    model = cp_model.CpModel()

    # Formed: pre-formed pairs are always formed; a lone pair at most once per person.
    formed = {
        k: (model.new_constant(1) if c.fixed else model.new_bool_var(f"x{k}"))
        for k, c in enumerate(candidates)
    }
    by_person: dict[str, list[int]] = defaultdict(list)
    for k, c in enumerate(candidates):
        by_person[c.patient_leader].append(k)
        by_person[c.partner].append(k)
    for ks in by_person.values():
        if len(ks) > 1:
            model.add_at_most_one(formed[k] for k in ks)

    # Placed: a formed pair goes to at most one cohort that both members can attend in full.
    placed: dict[tuple[int, int], cp_model.IntVar] = {}
    for k, c in enumerate(candidates):
        ys = [placed.setdefault((k, q), model.new_bool_var(f"y{k}_{q}")) for q in c.cohorts]
        if ys:
            model.add(sum(ys) <= formed[k])

    in_cohort: dict[int, list[int]] = defaultdict(list)
    for k, q in placed:
        in_cohort[q].append(k)

    n_sets: dict[int, cp_model.IntVar] = {}
    counts_of: dict[int, cp_model.IntVar] = {}
    two_of: dict[int, cp_model.IntVar] = {}
    for q, cohort in enumerate(cohorts):
        ks = in_cohort.get(q, [])
        ys = [placed[k, q] for k in ks]
        cap = min(cohort.capacity_pairs, len(ks))
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        # Capacity, and a pair count that splits into sets of lo..hi pairs.
        count = model.new_int_var(0, cap, f"n{q}")
        model.add(count == sum(ys))
        s = model.new_int_var(0, max(1, cap // lo + 1), f"s{q}")
        model.add(lo * s <= count)
        model.add(count <= hi * s)
        n_sets[q] = s
        counts_of[q] = count
        # Never two pairs sharing an organisation in one set: at most s pairs per organisation.
        if instance.rules.one_organisation_per_set == "hard":
            by_org: dict[str, list[int]] = defaultdict(list)
            for k in ks:
                c = candidates[k]
                for org in {tag(people[x].organisation) for x in (c.patient_leader, c.partner)}:
                    by_org[org].append(k)
            for _, org_ks in sorted(by_org.items()):
                if len(org_ks) > 1:
                    model.add(sum(placed[k, q] for k in org_ks) <= s)
        # Declared conflicts never share a set: two conflicting pairs in a cohort need s >= 2.
        two_sets = model.new_bool_var(f"two_sets{q}")
        two_of[q] = two_sets
        model.add(s >= 2).only_enforce_if(two_sets)
        member_pairs: dict[str, list[int]] = defaultdict(list)
        for k in ks:
            member_pairs[candidates[k].patient_leader].append(k)
            member_pairs[candidates[k].partner].append(k)
        conflicts = {
            tuple(sorted((pid, other)))
            for pid in member_pairs
            for other in people[pid].avoid
            if other in member_pairs
        }
        for u, v in sorted(conflicts):
            model.add(
                sum(placed[k, q] for k in member_pairs[u])
                + sum(placed[k, q] for k in member_pairs[v])
                <= 1 + two_sets
            )

    # Objective, lexicographic: (a) placed, (b) formed, (c) quality, (d) preferences and balance.
    n = len(candidates)
    fullest = model.new_int_var(0, 100, "fullest")
    for q, cohort in enumerate(cohorts):
        if cohort.capacity_pairs > 0 and in_cohort.get(q):
            fill = sum(placed[k, q] for k in in_cohort[q])
            model.add(100 * fill <= fullest * cohort.capacity_pairs)
    prefer_terms = []
    for (k, q), y in placed.items():
        c = candidates[k]
        hits = sum(
            cohorts[q].id in people[pid].preferred_cohorts for pid in (c.patient_leader, c.partner)
        )
        if hits:
            prefer_terms.append(hits * y)
    quality = sum(
        round(c.score * SCORE_SCALE) * formed[k] for k, c in enumerate(candidates) if not c.fixed
    )
    optional = any(not c.fixed for c in candidates)
    # A ceiling on (a), stated so that CP-SAT stops as soon as a plan reaches it (CP-SAT's own
    # bound is often looser): a max flow of pairs into cohorts whose capacity is cut to the
    # largest count that splits into sets; lone pairs count as at most one per lone person.
    ceiling = _placement_ceiling(instance, candidates)
    model.add(sum(placed.values()) <= ceiling)
    budget = (default_budget or DEFAULT_BUDGET) if time_limit is None else time_limit
    levels: list[tuple[str, cp_model.LinearExprT, float]] = [
        ("placed", sum(placed.values()), budget),
    ]
    ceilings = {"placed": ceiling}
    if optional:
        levels += [("formed", sum(formed.values()), budget), ("quality", quality, budget)]
    # (d) is best effort: a short budget of its own, whatever the time limit.
    d_cap = min(BALANCE_BUDGET, budget)
    levels.append(("balance", (2 * n + 1) * (100 - fullest) + sum(prefer_terms), d_cap))

    start = None if optional else greedy_placement(instance, candidates)
    if start is not None:  # start from the greedy plan: CP-SAT then only has to improve it
        for (k, q), y in placed.items():
            model.add_hint(y, start.cohort_of.get(k) == q)
    elif hint is not None:
        # A complete hint (every variable), so CP-SAT starts from a feasible plan at once.
        per_cohort: dict[int, int] = defaultdict(int)
        for k, c in enumerate(candidates):
            key = (c.patient_leader, c.partner)
            if not c.fixed:
                model.add_hint(formed[k], key in hint)
            for q in c.cohorts:
                on = key in hint and hint[key] == q
                model.add_hint(placed[k, q], on)
                per_cohort[q] += on
        top = 0
        for q, cohort in enumerate(cohorts):
            if q not in counts_of:
                continue
            k_q = per_cohort.get(q, 0)
            options = set_counts(cohort.set_size.min_pairs, cohort.set_size.max_pairs, k_q)
            s_q = max(options) if options else 0
            model.add_hint(counts_of[q], k_q)
            model.add_hint(n_sets[q], s_q)
            model.add_hint(two_of[q], s_q >= 2)
            if cohort.capacity_pairs and in_cohort.get(q):
                top = max(top, -(-100 * k_q // cohort.capacity_pairs))
        model.add_hint(fullest, top)
    solver = cp_model.CpSolver()
    solver.parameters.random_seed = seed
    if optional and len(placed) > PRESOLVE_MAX_VARS:
        # Measured: on ~27k variables presolve alone outlasts a 5 s budget; without it the
        # search starts from the hint at once.
        solver.parameters.cp_model_presolve = False
    solver.parameters.num_workers = 1 if deterministic else 2
    values: dict[str, int] = {}
    proven: dict[str, bool] = {}
    # every decision variable, so the plan handed from one level to the next is a complete hint
    variables = [
        *placed.values(),
        *(formed[k] for k, c in enumerate(candidates) if not c.fixed),
        *counts_of.values(),
        *n_sets.values(),
        *two_of.values(),
        fullest,
    ]
    solved = False
    greedy_at_ceiling = (
        start is not None and sum(q is not None for q in start.cohort_of.values()) >= ceiling
    )
    if greedy_at_ceiling:  # the greedy plan already places the most pairs possible
        model.add(sum(placed.values()) >= ceiling)
        levels = levels[1:]
        values["placed"], proven["placed"] = ceiling, True
    for name, expr, level_budget in levels:
        # Optimise each level in turn, holding the levels above at their optimum; the previous
        # solution is the hint, so every stage starts from a feasible plan.
        model.maximize(expr)
        # Deterministic mode counts CP-SAT's deterministic time, so the plan does not depend on
        # machine load. Only a time limit the caller set adds a wall-clock cap (twice the
        # budget): if it bites, the plan may vary run to run. (Measured: deterministic time
        # runs up to ~3x slower than wall time here, so a cap on our own default budgets bit
        # routinely and made default runs irreproducible.)
        if deterministic:
            solver.parameters.max_deterministic_time = level_budget
            if time_limit is not None:
                solver.parameters.max_time_in_seconds = 2 * level_budget
        else:
            solver.parameters.max_time_in_seconds = level_budget
        stopper = _StopAt(ceilings.get(name))
        code = solver.solve(model, stopper)
        if code == cp_model.MODEL_INVALID:  # a bug in this model: say what CP-SAT says
            raise RuntimeError(f"placement model invalid: {model.validate()}")
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        solved = True
        values[name] = round(solver.objective_value)
        # Reaching the ceiling is a proof too (CP-SAT's own bound is often looser).
        proven[name] = code == cp_model.OPTIMAL or stopper.reached
        best = [(var, solver.value(var)) for var in variables]
        model.clear_hints()
        for var, value in best:
            model.add_hint(var, value)
        model.add(expr >= values[name])
        chosen = [k for k in range(n) if solver.value(formed[k])]
        cohort_of: dict[int, int | None] = {k: None for k in chosen}
        for (k, q), y in placed.items():
            if solver.value(y):
                cohort_of[k] = q
        sets_in = {q: solver.value(s) for q, s in n_sets.items()}
    if not solved:
        if start is not None and greedy_at_ceiling:
            return replace(start, status="optimal")
        if code == cp_model.INFEASIBLE:
            return Placement([], {}, {}, "infeasible", None, None)
        if all(c.fixed for c in candidates):
            return greedy_placement(instance, candidates)
        return Placement([], {}, {}, "timeout", None, None)
    upper = [name for name, _, _ in levels if name != "balance"]
    return Placement(
        formed=chosen,
        cohort_of=cohort_of,
        sets_in=sets_in,
        status="optimal" if all(proven.get(k, False) for k in upper) else "feasible",
        objective=float(values.get("placed", 0)),
        bound=None,
        balance_proven=proven.get("balance", False),
    )


def _placement_ceiling(instance: Instance, candidates: list[Candidate]) -> int:
    """An upper bound on the number of pairs placed (see :func:`solve_placement`)."""
    from ortools.graph.python import max_flow

    cohorts = instance.cohorts
    fixed = [c for c in candidates if c.fixed and c.cohorts]
    lone_rows = {c.patient_leader for c in candidates if not c.fixed and c.cohorts}
    lone_cols = {c.partner for c in candidates if not c.fixed and c.cohorts}
    lone = min(len(lone_rows), len(lone_cols))
    room = []
    for cohort in cohorts:
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        # the largest count up to capacity (and up to the pairs there are) that splits into sets
        top = min(cohort.capacity_pairs, len(candidates))
        room.append(next((k for k in range(top, -1, -1) if set_counts(lo, hi, k)), 0))
    if lone:  # lone pairs may go anywhere: only the total room and head count bound them
        return min(sum(room), len(fixed) + lone)
    flow = max_flow.SimpleMaxFlow()
    source, sink = 0, 1
    for k, c in enumerate(fixed):
        flow.add_arc_with_capacity(source, 2 + k, 1)
        for q in c.cohorts:
            flow.add_arc_with_capacity(2 + k, 2 + len(fixed) + q, 1)
    for q, r in enumerate(room):
        flow.add_arc_with_capacity(2 + len(fixed) + q, sink, r)
    if not fixed or flow.solve(source, sink) != flow.OPTIMAL:
        return min(sum(room), len(fixed))
    return int(flow.optimal_flow())


class _StopAt(cp_model.CpSolverSolutionCallback):
    """Stops the search once the objective reaches a known ceiling (then it is optimal)."""

    def __init__(self, ceiling: int | None) -> None:
        super().__init__()
        self.ceiling = ceiling
        self.reached = False

    def on_solution_callback(self) -> None:
        if self.ceiling is not None and self.objective_value >= self.ceiling - 0.5:
            self.reached = True
            self.stop_search()


def _cohort_ok(instance: Instance, q: int, members: list[Candidate]) -> bool:
    """The placement rules of one cohort: capacity, a count that splits into sets, at most ``s``
    pairs per organisation, and two sets when conflicting pairs share the cohort."""
    cohort = instance.cohorts[q]
    n = len(members)
    if n > cohort.capacity_pairs:
        return False
    counts = set_counts(cohort.set_size.min_pairs, cohort.set_size.max_pairs, n)
    if not counts:
        return False
    people = instance.participants_by_id()
    need = 1
    if instance.rules.one_organisation_per_set == "hard":
        by_org: dict[str, int] = defaultdict(int)
        for c in members:
            for org in {tag(people[x].organisation) for x in (c.patient_leader, c.partner)}:
                by_org[org] += 1
        need = max(by_org.values(), default=1)
    ids = {x for c in members for x in (c.patient_leader, c.partner)}
    if any(other in ids for pid in ids for other in people[pid].avoid):
        need = max(need, 2)
    return max(counts) >= need


def greedy_placement(instance: Instance, candidates: list[Candidate]) -> Placement:
    """A quick feasible placement of fixed pairs, for when CP-SAT finds nothing in time.

    Pairs with the fewest cohort options go first, each to the cohort with the most room where
    the cohort rules (:func:`_cohort_ok`) can still be met; then each cohort drops its
    last-placed pairs until its rules hold. No optimality claim: status ``feasible``.
    """
    order = sorted(range(len(candidates)), key=lambda k: (len(candidates[k].cohorts), k))
    members: dict[int, list[int]] = defaultdict(list)
    for k in order:
        options = [
            q for q in candidates[k].cohorts if len(members[q]) < instance.cohorts[q].capacity_pairs
        ]
        if options:
            q = max(
                options, key=lambda q: (instance.cohorts[q].capacity_pairs - len(members[q]), -q)
            )
            members[q].append(k)
    for q, ks in members.items():
        while ks and not _cohort_ok(instance, q, [candidates[k] for k in ks]):
            ks.pop()
    cohort_of: dict[int, int | None] = {k: None for k in range(len(candidates))}
    for q, ks in members.items():
        for k in ks:
            cohort_of[k] = q
    return Placement(list(range(len(candidates))), cohort_of, {}, "feasible", None, None)
