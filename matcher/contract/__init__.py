"""The contract layer: the instance and solution models, the rules (each stated once), category
keys and the cross-reference checks an instance runs on itself. Bottom up: ``keys`` < ``rules``
< ``checks`` < ``instance`` < ``solution`` (the rules and checks name the Instance model for the
type checker only). It imports only :mod:`matcher.errors` and :mod:`matcher.text`; every other
layer builds on it."""
