"""Layer 3, Cell 2: training with early stopping, and what notebook 02 records."""
