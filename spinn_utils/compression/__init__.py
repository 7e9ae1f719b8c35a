"""Layer 4, Cells 3 and 5.5: magnitude and structured pruning, sparse storage and its conversion."""
