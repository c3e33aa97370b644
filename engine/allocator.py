"""Keep freed tensor memory in the process heap (glibc) instead of handing it back to the kernel.

glibc serves each block above its mmap threshold with a fresh mapping, unmaps it on free, and trims
the heap top as soon as 128 KiB lie free there. Training and unrolled matching allocate and free
activations of tens of MiB at every step, so every step faults in and zeroes new pages: a
trajectory-matching iteration at the reference setting spent a third of its CPU time in the kernel
(``python -m bench.allocator``). Compute processes reach the same peak again at the next step, so
holding on to it costs nothing they would not use; the API process does not call this.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_INT_MAX = 2**31 - 1  # mallopt takes a C int
_SETTINGS = (
    (_M_MMAP_THRESHOLD, _INT_MAX),  # blocks up to 2 GiB come from the heap, where free keeps them
    (_M_TRIM_THRESHOLD, _INT_MAX),  # and the heap top is not given back
    (_M_TOP_PAD, 1 << 30),  # grow it in 1 GiB steps of address space (pages count only once touched)
)


def keep_freed_memory() -> bool:
    """Apply the settings to this process (and the children it forks); False where libc is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other libcs
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS)
