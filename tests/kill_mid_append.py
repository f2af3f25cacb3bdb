"""A sweep driver that SIGKILLs itself halfway through writing its Nth record (a test helper).

    python tests/kill_mid_append.py N -- <orchestrator sweep arguments>

The line is left half-written and unterminated, as when a driver is killed
while it appends; the process dies before the rest of the record reaches disk.
"""

import os
import signal
import sys

from orchestrator.common import store
from orchestrator.cli import main

stop_at = int(sys.argv[1])
calls = 0
original = store.ResultsStore.append


def append_then_die(self, record):
    global calls
    calls += 1
    if calls < stop_at:
        return original(self, record)
    line = store.json.dumps(record, allow_nan=False, default=str).encode()
    with open(self.path, "ab") as f:
        f.write(line[: len(line) // 2])
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


store.ResultsStore.append = append_then_die
sys.exit(main(sys.argv[sys.argv.index("--") + 1:]))
