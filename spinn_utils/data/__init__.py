"""Layer 1, Cell 1: the milling data (synthetic, NASA mill.mat, CSV), splits, scaler, leakage check."""
