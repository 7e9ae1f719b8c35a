"""Layer 6, Cells 5 and 8: reloaded-model checks, test-set scores, cross-validation."""
