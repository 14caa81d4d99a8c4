"""tlhub.engine.allocator: freed memory stays in the process, so a second batch of the same size
does not fault its pages in again (what made 224 px passes 3x slower on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Five 256 MB arrays, one after another, each written and freed: the minor page faults of the
# last four (the first has to fault its pages in whatever malloc does).
_PROBE = """
import resource, sys
import numpy as np
from tlhub.engine.allocator import keep_freed_memory
applied = keep_freed_memory()
np.ones(32 * 2**20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    np.ones(32 * 2**20).sum()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env={**os.environ, **env}, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    applied, kept = _faults(TLHUB_KEEP_FREED_MEMORY="1")
    opted_out, returned = _faults(TLHUB_KEEP_FREED_MEMORY="0")
    assert applied and not opted_out
    huge_pages = 4 * 256 * 2**20 // (2 * 2**20)  # numpy asks for 2 MB pages where the kernel has them
    assert returned >= huge_pages  # without it, every array faults its pages in again
    assert kept * 20 < returned, (kept, returned)


def test_keep_freed_memory_is_idempotent():
    from tlhub.engine.allocator import keep_freed_memory

    assert keep_freed_memory() == keep_freed_memory()
