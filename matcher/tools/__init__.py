"""Tools for analysts: the intake generator and the benchmark harness. They sit above the
engine and call it through the library: they import the engine, intake, verification and the
layers below; never a front end."""
