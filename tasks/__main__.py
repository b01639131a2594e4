"""``python -m tasks``: list and run the experiments (see ``tasks/cli.py``)."""

import sys

from .cli import main

sys.exit(main())
