"""`python -m callback.cli`: the same as the `wecom` console script."""

import sys

from callback.cli import main

sys.exit(main())
