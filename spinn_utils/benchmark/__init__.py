"""Layer 5, Cells 6 and 7: every model variant timed interleaved on CPU and CUDA."""
