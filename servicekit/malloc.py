"""glibc's malloc, kept from growing the heap with blocks it could hand back to the system.

glibc serves blocks above a threshold (128 KiB) with ``mmap`` and returns them on ``free``, but
each such ``free`` raises the threshold to that block's size (up to 32 MiB). After the first
encode has freed a few-MiB buffer (the peaks, a read chunk), every later buffer of that size comes
from the heap and stays there, fragmented, after the request: measured, 6 MB more resident memory
in the transcoder and 2-3 MB in the gateway after one upload. Fixing the threshold with
``mallopt`` stops that climb. A no-op where the C library has no ``mallopt`` (macOS).
"""

import ctypes

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every block above ``threshold_bytes`` with ``mmap``, from now on; whether the C
    library took the setting. Call it once, early in a service's start-up."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt in this C library
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
