"""atheris fuzz target for ``servicekit.wav``: ``python -m tests.fuzz.fuzz_wav [libFuzzer flags]``.

    python -m tests.fuzz.fuzz_wav -max_total_time=600 var/fuzz-corpus   # the long run
    python -m tests.fuzz.fuzz_wav -runs=20000 -seed=1                     # what the suite runs

A crash (an exception other than the module's own errors, or a failed assertion) is written by
libFuzzer as ``crash-<sha1>`` in the working directory and the run exits non-zero.
"""

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["transcoder", "tests.fuzz"]):
    from tests.fuzz.wav_target import check


def test_one_input(data: bytes) -> None:
    check(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
