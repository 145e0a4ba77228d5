"""glibc's malloc kept from holding on to freed buffers, with three settings:

- Two arenas: the encoder and analysis threads (and the default executor's) otherwise each get
  an arena of their own, up to eight per core, and each keeps the freed buffers of the batches
  it handled. Measured on two 600 s encodes through one transcoder: peak RSS 154 MB with glibc's
  default, 124 MB with two arenas, the same time.
- A fixed mmap threshold of 1 MiB: glibc otherwise raises its threshold to the size of each
  mapped block freed (up to 32 MiB), after which the MiB-sized buffers of a long upload (spool
  flushes, read-back blocks, peaks) come from the heap and fragment it, so the peak grows with
  the length.
- A trim threshold of 4 MiB: fixing the mmap threshold also fixes the trim threshold at 128 KiB,
  and the heap then shrinks and grows back on every batch (300,000 page faults in a 600 s encode
  instead of 4,000; 4 MiB: 40,000).

Measured through the gateway and the transcoder (``make bench``'s memory rows, sqlite+folder):
peak RSS of both at 3600 s 198 MB with glibc's defaults, 179 MB with these; 60 s to 3600 s
+20 MB before, +6 MB after; the upload time the same within the machine's noise.

A no-op where the C library has no ``mallopt`` (macOS, musl)."""

import ctypes

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SETTINGS = {M_ARENA_MAX: 2, M_MMAP_THRESHOLD: 1 << 20, M_TRIM_THRESHOLD: 4 << 20}


def tune_malloc() -> bool:
    """glibc's malloc set to ``SETTINGS``; whether the C library took them all. Call it early in
    a service's start-up, before its threads allocate."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt in this C library
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    took = [mallopt(option, value) for option, value in SETTINGS.items()]  # each, whatever fails
    return all(took)
