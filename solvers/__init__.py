"""Domain-agnostic optimisation solvers: numpy arrays in, arrays out.

This package never imports :mod:`matcher`. Each solver documents its guarantee
(optimal, or heuristic with a bound).
"""
