"""Rendering: plan views (who is who), JSON/CSV/terminal table, the HTML report page and the
plan workbook, from a solution and its instance. Imports the contract layer, errors, text and
files; never the engine (the criteria it lists are the contract's)."""
