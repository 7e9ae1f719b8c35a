"""``python -m spinn_utils.convert_to_sparse``: the conversion CLI (``compression/convert.py``)."""
import sys

from .compression.convert import main

if __name__ == "__main__":
    sys.exit(main())
