"""Layer 8: the headless driver (run_all.py, spinn-run) and the archive of a run (Cell 4)."""
