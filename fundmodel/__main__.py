"""``python -m fundmodel``: the same as the ``fundmodel`` command."""

import sys

from .cli import main

sys.exit(main())
