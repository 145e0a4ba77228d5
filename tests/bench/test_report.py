"""The target rows of the report, judged from a hand-made result (no run)."""

from typing import Any

from bench import report


def _single(peaks: dict[float, float]) -> list[dict[str, Any]]:
    return [
        {
            "audio_seconds": seconds,
            "paths": {
                name: {
                    "ratio_to_ffmpeg": 0.9,
                    "peak_rss_mb": {"total": mb},
                    "peak_pss_mb": {"total": mb - 30},
                }
                for name in report.GATEWAYS
            },
        }
        for seconds, mb in peaks.items()
    ]


def _memory_rows(peaks: dict[float, float]) -> list[dict[str, Any]]:
    results = {"single": _single(peaks), "concurrency": {}, "download": {}, "quality": []}
    return [row for row in report.targets(results) if row["figure"].startswith("peak RSS")]


def test_the_memory_row_says_which_of_its_two_targets_holds() -> None:
    flat_but_large = _memory_rows({5.0: 160.0, 60.0: 175.0, 600.0: 178.0, 3600.0: 181.0})
    assert [row["met"] for row in flat_but_large] == [False, False]
    assert flat_but_large[0]["parts"] == [("≤ 150 MB", False), ("flat, +6 MB", True)]
    small_but_growing = _memory_rows({60.0: 120.0, 3600.0: 145.0})
    assert small_but_growing[0]["parts"] == [("≤ 150 MB", True), ("flat, +25 MB", False)]
    both = _memory_rows({60.0: 140.0, 3600.0: 148.0})
    assert [row["met"] for row in both] == [True, True]
    not_run = _memory_rows({60.0: 140.0})[0]  # no 3600 s upload (make bench without --long)
    assert (not_run["met"], not_run["parts"]) == (None, [])
