"""Layer 7, Cell 9: Table 1, the validation checklist and the figures, read from a run's results."""
