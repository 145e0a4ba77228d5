"""Fixtures the transcoder tests share."""

from collections.abc import Sequence
from pathlib import Path

import pytest

from transcoder import join, parallel

Joined = tuple[parallel.Plan, list[join.Cut]]


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> list[Joined]:
    """The plans and cuts of the joins that ran (the split path really was taken)."""
    seen: list[Joined] = []
    real = parallel.join

    def spy(split: parallel.Plan, segments: Sequence[Path], output: Path) -> list[join.Cut]:
        cuts = real(split, segments, output)
        seen.append((split, cuts))
        return cuts

    monkeypatch.setattr(parallel, "join", spy)
    return seen
