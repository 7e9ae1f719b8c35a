"""Layer 0: what every stage shares (errors, results I/O, environment, configs, names, paths)."""
