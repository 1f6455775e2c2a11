"""`python -m training` entry point."""

import sys

from training.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
