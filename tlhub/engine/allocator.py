"""Keep freed memory in the process while tlhub computes on the CPU (glibc's malloc).

glibc hands every allocation above a threshold (at most 32 MB) straight to ``mmap`` and returns
it to the system on ``free``. A convolutional network at 224 px allocates activations larger than
that in every layer of every batch, so each batch faults in (and the kernel zeroes) the same
gigabytes again. On 2 CPU cores, EfficientNet-Lite0's forward pass spent more time in the kernel
than in its own arithmetic: 34 ms per image at 224 px (batch 32) and 38 ms at batch 128, against
11 ms for both once freed memory stays with the process; at 96 px, batch 128, 6.0 ms against
2.3 ms. The peak resident memory grew from 3.5 to 3.6 GB.

That is what PyTorch's CPU performance guides get from jemalloc or tcmalloc through
``LD_PRELOAD``; glibc's own ``mallopt`` gets it without a second allocator or a restart: large
blocks come from the heap (``M_MMAP_MAX`` 0), and the heap is never trimmed (``M_TRIM_THRESHOLD``
at its maximum). The cost is that memory freed by the process is not returned to the system until
it exits, which suits a training or evaluation process and is why tlhub does it only when it starts
such work (``tlhub.train``, the feature passes of ``tlhub select`` and the doctor, and every ``tlhub``
command). ``TLHUB_KEEP_FREED_MEMORY=0`` leaves malloc as it was.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory in the process; True where it now does.

    Idempotent and cheap (no torch import). Does nothing off Linux, under another C library, or
    with ``TLHUB_KEEP_FREED_MEMORY=0`` in the environment."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("TLHUB_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt  # glibc (musl has none)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # -1 is the largest trim threshold: mallopt's int becomes glibc's size_t, SIZE_MAX
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    return _applied
