"""`python -m zferry` runs the zferry command line."""

import sys

from zferry.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
