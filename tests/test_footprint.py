"""What each service's process holds: the modules its app needs and no others (each optional one
costs megabytes of resident memory for its whole life), and a malloc that hands large blocks back.

Each check runs in a fresh interpreter: this one has imported everything already.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """``code`` run by a fresh interpreter in the repository; its stdout."""
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


# --- malloc ---------------------------------------------------------------------------------------

MMAPPED_AFTER_A_LARGE_FREE = """
    import ctypes, json

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    fixed = False
    if {fix}:
        from servicekit.malloc import fix_mmap_threshold
        fixed = fix_mmap_threshold()
    large = bytearray(8 << 20)
    del large  # glibc raises its threshold to this freed mmapped block's size
    before = mallinfo2().hblkhd
    block = bytearray(1 << 20)
    print(json.dumps({{"fixed": fixed, "mmapped": mallinfo2().hblkhd - before}}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_fixed_threshold_keeps_a_large_block_out_of_the_heap_after_a_larger_one_was_freed() -> None:
    unfixed = json.loads(run_python(MMAPPED_AFTER_A_LARGE_FREE.format(fix=False)))
    fixed = json.loads(run_python(MMAPPED_AFTER_A_LARGE_FREE.format(fix=True)))
    assert unfixed["mmapped"] == 0  # glibc's own behaviour: the 1 MiB came from the heap
    assert fixed == {"fixed": True, "mmapped": pytest.approx(1 << 20, rel=0.01)}
