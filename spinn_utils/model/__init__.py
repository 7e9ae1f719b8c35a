"""Layer 2: DensePINN, its physics loss, counting, inference and checkpoints."""
