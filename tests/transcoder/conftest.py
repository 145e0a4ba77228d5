"""Fixtures the transcoder tests share."""

from pathlib import Path

import pytest

from transcoder import parallel


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> list[parallel.Plan]:
    """The plans of the joins that ran (the two-segment path really was taken)."""
    seen: list[parallel.Plan] = []
    real = parallel.join

    def spy(split: parallel.Plan, first: Path, second: Path, output: Path) -> None:
        seen.append(split)
        real(split, first, second, output)

    monkeypatch.setattr(parallel, "join", spy)
    return seen
