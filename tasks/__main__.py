"""``python -m tasks``: list and run the experiments (see ``tasks/cli.py``).

BLAS reads its thread count once, when numpy loads, so the count is set here
first, before anything imports numpy: one thread per process by default
(results that do not depend on the machine), ``--threads N`` to change it.
``tasks/__init__.py``, ``tasks/cli.py`` and ``tasks/sweep.py`` import no numpy.
"""

import sys

from . import cli

cli.pin_blas_threads(cli.threads_from_argv(sys.argv[1:]))

sys.exit(cli.main())
