"""Entry point: ``python -I -S -B <this directory> CONTROL_FD [PYSECCOMP_DIR]``.

Run as a directory, Python puts the directory itself first on ``sys.path`` (even under ``-I``);
its parent is where this package and ``pyseccomp`` are found by name (``/sandbox/runtime``
in bubblewrap), and nothing of the host's is (``-I -S``: no site, no environment).
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from sandboxed.zygote import main  # noqa: E402 (needs the path above)

main()
