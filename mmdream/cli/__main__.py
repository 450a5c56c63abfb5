"""``python -m mmdream.cli ARGS``: the ``mmdream`` command."""

import sys

from mmdream.cli import main

sys.exit(main())
