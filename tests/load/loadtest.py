"""Concurrent uploads against a running gateway, then every download checked against its ETag.

    python -m tests.load.loadtest --url http://127.0.0.1:8000 --users 20 --uploads 200

Each of ``--users`` users is one concurrent client uploading its share of ``--uploads`` WAVs in a
row. Afterwards every stored recording is downloaded and its SHA-256 compared with the ETag the
gateway stored. Prints latency percentiles; exits 1 on any 5xx, transport error or mismatch.
Only send it to a gateway on this machine (loopback).
"""

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from testkit.wavcorpus import pcm


@dataclass
class LoadReport:
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    # (record id, user id, download URL) of every 201
    stored: list[tuple[str, str, str]] = field(default_factory=list)
    # record id -> SHA-256 of its downloaded body
    downloads: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "uploads": sum(self.statuses.values()) + len(self.transport_errors),
            "statuses": dict(sorted(self.statuses.items())),
            "transport_errors": len(self.transport_errors),
            "downloads_checked": len(self.downloads),
            "sha256_mismatches": len(self.mismatches),
            "latency_seconds": {
                "p50": round(self.percentile(0.50), 3),
                "p95": round(self.percentile(0.95), 3),
                "p99": round(self.percentile(0.99), 3),
                "mean": round(statistics.fmean(self.latencies), 3) if self.latencies else 0.0,
            },
        }

    @property
    def ok(self) -> bool:
        return not (self.server_errors or self.transport_errors or self.mismatches)


async def run_load(
    url: str, *, users: int, uploads: int, seconds: float = 1.0, timeout: float = 300
) -> LoadReport:
    """``uploads`` uploads from ``users`` concurrent users, then every download verified."""
    report = LoadReport()
    wav = pcm(seconds, 44100, 2)
    limits = httpx.Limits(max_connections=users * 2, max_keepalive_connections=users * 2)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        accounts = await asyncio.gather(*(_new_user(client, n) for n in range(users)))
        shares = [uploads // users + (1 if n < uploads % users else 0) for n in range(users)]
        await asyncio.gather(
            *(
                _upload_many(client, report, account, wav, share)
                for account, share in zip(accounts, shares, strict=True)
            )
        )
        await asyncio.gather(*(_verify(client, report, stored) for stored in report.stored))
    return report


async def _new_user(client: httpx.AsyncClient, number: int) -> dict[str, str]:
    response = await client.post("/users", json={"name": f"load-{number}"})
    response.raise_for_status()
    user: dict[str, str] = response.json()
    return user


async def _upload_many(
    client: httpx.AsyncClient, report: LoadReport, user: dict[str, str], wav: bytes, count: int
) -> None:
    for number in range(count):
        started = time.perf_counter()
        try:
            response = await client.post(
                "/record",
                data={"user": user["id"]},
                files={"file": (f"take-{number}.wav", wav, "audio/wav")},
                headers={"Authorization": f"Bearer {user['token']}"},
            )
        except httpx.TransportError as error:
            report.transport_errors.append(repr(error))
            continue
        report.latencies.append(time.perf_counter() - started)
        report.statuses[response.status_code] += 1
        if response.status_code == 201:
            body = response.json()
            report.stored.append((body["id"], body["user"], body["url"]))


async def _verify(
    client: httpx.AsyncClient, report: LoadReport, stored: tuple[str, str, str]
) -> None:
    record_id, _, url = stored
    response = await client.get(url)
    digest = hashlib.sha256(response.content).hexdigest()
    report.downloads[record_id] = digest
    if response.status_code != 200 or response.headers.get("ETag") != f'"{digest}"':
        report.mismatches.append(record_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.loadtest", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each WAV")
    args = parser.parse_args(argv)
    report = asyncio.run(
        run_load(args.url, users=args.users, uploads=args.uploads, seconds=args.seconds)
    )
    print(json.dumps(report.summary(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
