"""``python -m numpy_cam`` is the ``numpy-cam`` command."""
import sys

from .cli import main

sys.exit(main())
