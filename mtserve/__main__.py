"""`python -m mtserve` is `mtserve`."""

import sys

from mtserve.cli import main

sys.exit(main())
