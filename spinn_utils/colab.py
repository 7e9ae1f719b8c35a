"""``python -m spinn_utils.colab --repo OWNER/NAME``: point every Colab link at your fork (pipeline/colab_setup.py)."""
import sys

from .pipeline.colab_setup import main

if __name__ == "__main__":
    sys.exit(main())
