"""Keep TensorFlow's native start-up log lines off the user's terminal.

TensorFlow 2.21 prints lines such as "I0000 ... port.cc:153] oneDNN custom operations are on"
from C++ before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL does not silence them. The
CLI therefore points file descriptor 2 at a pipe and forwards everything except those lines to
the real stderr. Python's own sys.stderr keeps writing to the terminal directly, so rich
progress bars still see a TTY. ZOO_VERBOSE=1 turns the filter off.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import sys
import threading

# absl/glog native lines ("I0000 00:00:17.. 123 file.cc:45] ...") and absl's pre-init banner.
_NATIVE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.\-]+:\d+\]|WARNING: All log messages before absl::InitializeLog)")


def install() -> None:
    if os.environ.get("ZOO_VERBOSE") or getattr(install, "done", False):
        return
    install.done = True
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:  # no usable fd 2 (embedded interpreter): leave stderr alone
        return
    sys.stderr = io.TextIOWrapper(os.fdopen(real, "wb", buffering=0), encoding="utf-8",
                                  errors="replace", line_buffering=True, write_through=True)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                if not _NATIVE.match(line):
                    os.write(real, line)

    thread = threading.Thread(target=pump, name="zoo-stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:
        try:
            os.dup2(real, 2)  # closes the pipe's last writer, so pump() sees EOF
        except OSError:
            return
        thread.join(timeout=1.0)

    atexit.register(drain)
