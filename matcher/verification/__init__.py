"""The independent verifier: re-checks every hard rule and recomputes every objective term
from the instance and the solution alone. It imports only the contract layer and errors, never
the engine, so that an engine bug cannot hide itself."""
