"""Placement: pairs into cohorts. ``model`` is the exact CP-SAT placement, ``ceiling`` the
flow bound on what any plan could place, ``strategy`` the choice of route (joint model, repair,
flow repair) under a deadline."""
