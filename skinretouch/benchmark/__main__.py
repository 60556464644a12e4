"""``python -m skinretouch.benchmark``: see :mod:`skinretouch.benchmark.run`."""

import sys

from skinretouch.benchmark.run import main

sys.exit(main())
