"""The engine: prepare (everything derived from an instance, once) -> pairing -> placement
(model, ceiling, strategies) -> sets -> re-plan -> reasons -> assemble -> solve; ``cpsat`` runs a
CP-SAT model under the deadline and cancel, ``runner`` runs a solve in a worker thread for a
front end (progress, cancel, the exception-to-message mapping). It imports the contract,
comparison, errors, files, text and ``solvers/``; never the front ends, tools, rendering, intake
or the verifier (import-linter checks this)."""
