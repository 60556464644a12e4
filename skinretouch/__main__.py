"""``python -m skinretouch`` is the ``skinretouch`` command."""

import sys

from .cli import main

sys.exit(main())
