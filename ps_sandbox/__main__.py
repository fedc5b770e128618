"""``python -m ps_sandbox serve ...``: the emulator on its own, without the pipeline."""

import sys

from ps_sandbox.cli import main

sys.exit(main())
