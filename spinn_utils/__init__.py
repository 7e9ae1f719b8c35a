"""spinn_utils: the SPINN pipeline's helper package, one module per stage.

config -> data -> models/physics -> train -> prune -> sparse -> bench -> evaluate -> report/figures
"""
from .config import ResultsPaths, SpinnError, resolve_device, set_seed

__all__ = ["SpinnError", "ResultsPaths", "resolve_device", "set_seed"]
__version__ = "0.1.0"
