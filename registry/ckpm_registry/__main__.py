"""``python -m ckpm_registry`` is ``ckpm-registry``."""
import sys

from ckpm_registry.cli import main

sys.exit(main())
