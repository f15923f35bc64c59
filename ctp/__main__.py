"""``python -m ctp`` runs the ``ctp`` command."""

import sys

from ctp.cli import main

sys.exit(main())
