"""``python -m dumpling``: same as ``dumpling-server``."""

import sys

from dumpling.server import main

sys.exit(main())
