"""The moonshot experiment end to end on 20 s of audio: pinned workers, the join, the report (no
timings are asserted; ``python -m bench.moonshot`` is where times are measured)."""

from pathlib import Path

from bench import moonshot
from transcoder import join


def test_two_pinned_segments_join_to_the_single_pass_length_and_report(tmp_path: Path) -> None:
    results = moonshot.measure(tmp_path, seconds=20, segments=2, repeats=1)

    assert results["samples"] == 20 * 44100
    assert results["quality"]["samples_equal"]
    assert results["quality"]["frames"]["split"] == results["samples"]
    snr = results["quality"]["snr_db"]
    assert snr["split"] > snr["single"] - 0.1  # the joined stream keeps the single pass's quality
    assert all(check["matches"] for check in results["crc_pass"].values())
    assert len(results["cuts"]) == 1
    # Each cut's neighbours encode the overlap twice: 24 frames, give or take LAME's flush.
    single, split = (results["runs"][k][0]["encoded_frames"] for k in (1, 2))
    assert 0 < split - single <= join.OVERLAP_FRAMES + 2
    markdown = moonshot.render(results)
    assert "| 2 |" in markdown
    assert "Sample counts equal: yes" in markdown
