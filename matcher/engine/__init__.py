"""The engine: prepare (everything derived from an instance, once) -> pairing -> placement
(model, ceiling, strategies) -> sets -> re-plan -> reasons -> assemble -> solve. ``assemble``'s
``make_plan`` runs the named stages (pair, place, name the pairs, group, assemble, measure) over
the one prepared intake; ``objectives`` is the registry of pairing objectives (nothing else
compares an objective's name); ``cpsat`` runs a CP-SAT model under the deadline and cancel and
solves it one level at a time (placement and set-keeping share it); ``runner`` runs a solve in a
worker thread for a front end (progress, cancel, the exception-to-message mapping). It imports
the contract, comparison, intake (reading files), errors, files, text and ``solvers/``; never
the front ends, tools, rendering or the verifier (import-linter checks this)."""
