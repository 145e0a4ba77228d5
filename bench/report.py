"""docs/benchmarks.md (tables + how to reproduce) and benchmarks.json from one result."""

import json
from pathlib import Path
from typing import Any

GATEWAYS = ("gateway sqlite+folder", "gateway postgres+s3")
X = "\u00d7"  # the multiplication sign, escaped for ruff's RUF001
PATH_NAMES = {
    "ffmpeg": "raw `ffmpeg` CLI (baseline)",
    "transcoder": "transcoder `POST /transcode`",
    "gateway sqlite+folder": "upload via gateway, SQLite + folder",
    "gateway postgres+s3": "upload via gateway, PostgreSQL + S3",
}


def write(results: dict[str, Any], output_dir: Path, *, command: str) -> tuple[Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "command": command, "goals": goals(results)}
    json_path = output_dir / "benchmarks.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown = output_dir / "benchmarks.md"
    markdown.write_text(render(results))
    return markdown, json_path


def _row(single: list[dict[str, Any]], seconds: float) -> dict[str, Any] | None:
    return next((row for row in single if row["audio_seconds"] == seconds), None)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 5 with the figure measured in this run (``met`` is None when not run)."""
    single = results["single"]
    out: list[dict[str, Any]] = []
    for seconds in (600.0, 3600.0):
        row = _row(single, seconds)
        ratios = [row["paths"][name]["ratio_to_ffmpeg"] for name in GATEWAYS] if row else []
        out.append(
            {
                "goal": f"1. end-to-end upload of {seconds:g} s ≤ 1.0{X} raw ffmpeg",
                "measured": ", ".join(f"{r:.2f}{X}" for r in ratios) or "not run",
                "met": all(r <= 1.0 for r in ratios) if ratios else None,
            }
        )
    peaks = {}
    for seconds in (60.0, 600.0, 3600.0):
        row = _row(single, seconds)
        if row:
            peaks[seconds] = max(row["paths"][name]["peak_rss_mb"]["total"] for name in GATEWAYS)
    out.append(
        {
            "goal": "2. gateway + transcoder + children peak ≤ 150 MB during a 3600 s upload, flat",
            "measured": ", ".join(f"{s:g} s: {mb:.0f} MB" for s, mb in peaks.items()) or "not run",
            "met": peaks[3600.0] <= 150 if 3600.0 in peaks else None,
        }
    )
    row = _row(single, 5.0)
    ratios = [row["paths"][name]["ratio_to_ffmpeg"] for name in GATEWAYS] if row else []
    out.append(
        {
            "goal": f"3a. 5 s upload p50 ≤ 1.5{X} raw ffmpeg",
            "measured": ", ".join(f"{r:.2f}{X}" for r in ratios) or "not run",
            "met": all(r <= 1.5 for r in ratios) if ratios else None,
        }
    )
    speedups = []
    for rows in results["concurrency"].values():
        four = next((r for r in rows if r["clients"] == 4), None)
        if four:
            speedups.append(four["speedup_vs_1_client"])
    out.append(
        {
            "goal": f"3b. 4 clients ≥ 1.8{X} the uploads/s of 1 client",
            "measured": ", ".join(f"{s:.2f}{X}" for s in speedups) or "not run",
            "met": all(s >= 1.8 for s in speedups) if speedups else None,
        }
    )
    download_ratios = [row["ratio"] for row in results["download"].values()]
    out.append(
        {
            "goal": "4. download ≥ 80% of reading the object straight from the backend",
            "measured": ", ".join(f"{r:.0%}" for r in download_ratios),
            "met": all(r >= 0.8 for r in download_ratios),
        }
    )
    return out


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    changed = " + uncommitted changes" if machine["worktree_changed"] else ""
    setup = results["setup"]
    single = results["single"]
    lines = [
        "# Benchmarks",
        "",
        "riffle side by side with the raw encoder, on the same generated files, in one run.",
        f"Produced by `{results['command']}` in {results['wall_seconds']:g} s; "
        "the numbers below are that run's output (also in `benchmarks.json`).",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench                        # 0.1 s, 5 s, 60 s and 600 s files (~4 min on 2 cores)",
        ".venv/bin/python -m bench --long  # adds the 3600 s file (~4 min more)",
        ".venv/bin/python -m bench --quick # a tiny run that checks the harness (writes to /tmp)",
        "```",
        "",
        "Needs nothing but the synced venv: it starts its own transcoder and two gateways",
        "(uvicorn, as the Dockerfile runs them), uses PostgreSQL at 127.0.0.1:5432 if it answers",
        "(else an embedded one from pgserver) and an S3 endpoint from moto's server. It writes",
        "`docs/benchmarks.md` and `docs/benchmarks.json`. Nothing in `make test` asserts a time.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu']}, {machine['cpus']} cores |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| kernel / Python | {machine['kernel']} / {machine['python']} |",
        f"| ffmpeg (baseline and transcoder) | `{setup['ffmpeg']}` — {machine['ffmpeg']} |",
        f"| load average (1/5/15 min) before, after | {machine['load_average_before']}; "
        f"{machine['load_average']} |",
        f"| PostgreSQL | {setup['postgres']} |",
        f"| S3 | {setup['s3']} |",
        f"| commit | {machine['commit']}{changed}, {machine['date']} |",
        "",
        "## Goals (issue 5)",
        "",
        "| goal | measured (sqlite+folder, postgres+s3) | met |",
        "|---|---|---|",
    ]
    for goal in results["goals"]:
        met = {True: "yes", False: "**no**", None: "not run"}[goal["met"]]
        lines.append(f"| {goal['goal']} | {goal['measured']} | {met} |")
    lengths = [row["audio_seconds"] for row in single]
    header = "| path | " + " | ".join(f"{s:g} s" for s in lengths) + " |"
    rule = "|---|" + "---|" * len(lengths)
    lines += [
        "",
        f"## Time to an MP3 (median wall time; {X} the raw ffmpeg median of the same run)",
        "",
        "Input: stereo 44.1 kHz 16-bit PCM WAV; 128 kbit/s CBR; runs per length: "
        + ", ".join(f"{s:g} s {X} {row['runs']}" for s, row in zip(lengths, single, strict=True))
        + ". Upload times run from the first byte sent to the 201 answer (the MP3 stored, the row",
        "written); the transcoder time includes reading its whole MP3 answer.",
        "",
        header,
        rule,
    ]
    for name, title in PATH_NAMES.items():
        cells = []
        for row in single:
            path = row["paths"][name]
            ratio = "" if name == "ffmpeg" else f" ({path['ratio_to_ffmpeg']:.2f}{X})"
            cells.append(f"{_duration(path['median_s'])}{ratio}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "Download of each uploaded MP3 (`GET /record`, median):", "", header, rule]
    for name in GATEWAYS:
        cells = [_duration(row["paths"][name]["download_median_s"]) for row in single]
        lines.append(
            f"| {PATH_NAMES[name].replace('upload via', 'download via')} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "## Peak memory (RSS, MB; process trees sampled from /proc every 20 ms)",
        "",
        "The baseline is ffmpeg's own peak (from `wait4`). For the services: the transcoder",
        "process plus its ffmpeg children, and the gateway process; `total` is the peak of their",
        "sum.",
        "",
        header,
        rule,
        "| raw ffmpeg | "
        + " | ".join(f"{row['paths']['ffmpeg']['peak_rss_mb']['ffmpeg']:.0f}" for row in single)
        + " |",
        "| transcoder + ffmpeg (transcoder alone) | "
        + " | ".join(
            f"{row['paths']['transcoder']['peak_rss_mb']['transcoder']:.0f}" for row in single
        )
        + " |",
    ]
    for name in GATEWAYS:
        cells = []
        for row in single:
            peak = row["paths"][name]["peak_rss_mb"]
            cells.append(
                f"{peak['total']:.0f} (gw {peak['gateway']:.0f} + tr {peak['transcoder']:.0f})"
            )
        lines.append(f"| total, {PATH_NAMES[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Concurrency (uploads of one clip through the gateway)",
        "",
        f"{results['setup']['concurrency_repeats']} repeat(s) per row; the row shows the one of"
        " median throughput.",
        "",
        f"| back-end | clients | uploads | uploads/s | {X} 1 client | p50 | p95 | peak total MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, rows in results["concurrency"].items():
        for row in rows:
            lines.append(
                f"| {backend} | {row['clients']} | {row['uploads']} | {row['uploads_per_s']:.1f} "
                f"| {row['speedup_vs_1_client']:.2f}{X} | {_duration(row['p50_s'])} "
                f"| {_duration(row['p95_s'])} | {row['peak_rss_mb']['total']:.0f} |"
            )
    lines += [
        "",
        "## Large download (`GET /record` vs reading the object with the store's own code)",
        "",
        "| back-end | object | via gateway | direct from the store | ratio | gateway peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for backend, row in results["download"].items():
        lines.append(
            f"| {backend} | {row['object_bytes'] / 1e6:.0f} MB | {row['gateway_mib_s']:.0f} MiB/s "
            f"| {row['direct_mib_s']:.0f} MiB/s | {row['ratio']:.0%} "
            f"| {row['peak_rss_mb']['gateway']:.0f} |"
        )
    lines += [
        "",
        "## Method",
        "",
        f"- Each length runs every path round-robin (ffmpeg, transcoder, gateway {X}2, then a",
        "  download of what was just uploaded), so that drift hits all paths alike; the",
        "  first request of each path is a warm-up and not counted.",
        "- Every answer is checked (status, size, duration within 0.1 s), so a fast failure cannot",
        "  pass for a fast success.",
        "- The load average in the machine table says how busy the machine was: when other work",
        "  shares the 2 cores, short-clip and concurrency figures move by tens of percent between",
        "  runs; compare runs made on an idle machine.",
        "- The client (httpx) runs on the same 2 cores as the services and competes with them, as",
        "  the raw ffmpeg baseline does not; that is part of the measured cost.",
        "- The large download is an MP3 of the wanted size put in place with the store and a row",
        "  as an upload would leave them; the direct read uses the gateway's own store code",
        "  (`open_range`) in the benchmark process, without HTTP: for the folder that is a copy",
        "  from the page cache, a ceiling no HTTP server reaches. moto keeps objects in memory",
        "  and is slower than MinIO, so the S3 row compares against a slow backend.",
        "",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
