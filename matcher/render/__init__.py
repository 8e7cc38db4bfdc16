"""Rendering: plan views (who is who), JSON/CSV/terminal table, the HTML report page and the
plan workbook, from a solution and its instance. Imports the contract layer, text and files;
never the engine's solvers."""
