"""The contract layer: the instance and solution models, the rules (each stated once), category
keys and the cross-reference checks on an instance. It imports only :mod:`matcher.errors` and
:mod:`matcher.text`; every other layer builds on it."""
