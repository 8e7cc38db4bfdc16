"""Comparison: the changes between two plans (who moved, who was re-paired, who left). Imports
only the contract layer and errors; the engine uses it to report a re-plan's changes."""
