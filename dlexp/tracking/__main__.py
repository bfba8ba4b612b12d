"""`python -m dlexp.tracking`: the tracking process that writes one run (see `process.py`).

It lives exactly as long as its stdin. A Ctrl-C or a SIGTERM is for the training process, which then tells this
one how the run ended: the recorder starts this process in its own session, out of the terminal's reach, and
both signals are ignored here before anything else, MLflow's import (seconds) included.
"""

import os
import signal
import sys

for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, signal.SIG_IGN)
# logging must never slow training down: this process takes only the CPU that training leaves idle
try:
    os.nice(10)
except OSError:
    pass

from dlexp.tracking.process import serve  # noqa: E402  (MLflow: after the signals)

# replies go to the fd the training process handed over, never to stdout, where libraries print
_fd = int(sys.argv[sys.argv.index("--reply-fd") + 1]) if "--reply-fd" in sys.argv else os.dup(1)
serve(stdout=os.fdopen(_fd, "w"))
