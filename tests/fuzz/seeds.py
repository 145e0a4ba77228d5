"""Seed inputs for the WAV fuzzer: the head of every corpus file, good and bad."""

from pathlib import Path

from testkit import wavcorpus

SEED_BYTES = 512


def write_seeds(folder: Path) -> list[Path]:
    """One file per corpus case (its first ``SEED_BYTES``), for libFuzzer to mutate."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = [(case.name, case.wav) for case in wavcorpus.good_cases(0.05)]
    cases += [(case.name, case.wav) for case in wavcorpus.bad_cases()]
    paths = []
    for name, data in cases:
        path = folder / name
        path.write_bytes(data[:SEED_BYTES])
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys

    for path in write_seeds(Path(sys.argv[1] if len(sys.argv) > 1 else "var/fuzz-corpus")):
        print(path)
