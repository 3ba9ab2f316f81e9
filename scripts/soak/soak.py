#!/usr/bin/env python3
"""Soak test: mixed load on the real binary for a long time, recording RSS
and latency over time.

Starts `birthday-api serve` on a fresh data dir (127.0.0.1, free ports),
stores every key of the key space once (so the data set is at its full size
before measuring: growth after that is the service's, not the data's),
drives it with a closed-loop mix of GET (70 %), PUT (25 %) and DELETE (5 %)
over a bounded key space from N keep-alive connections, samples the
process's RSS and the window's latency percentiles every few seconds, and
checks that RSS after the warm-up grows less than the allowed fraction.

Writes <out>/soak.csv, <out>/soak.json and <out>/soak.svg (RSS and p99
latency over time). Standard library only, so it runs anywhere CI does.

Exit status: 0 when the RSS criterion holds and no request failed with a
5xx or a broken connection, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIX = (("GET", 70), ("PUT", 25), ("DELETE", 5))


def letters(number: int) -> str:
    """Usernames are letters only: the number in base 26."""
    text = []
    while True:
        text.append(chr(ord("a") + number % 26))
        number //= 26
        if number == 0:
            return "".join(text)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures = 0

    def take(self) -> tuple[list[float], dict[int, int], int]:
        taken = (self.latencies, self.statuses, self.failures)
        self.latencies, self.statuses, self.failures = [], {}, 0
        return taken


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if match:
        await reader.readexactly(int(match.group(1)))
    return status


async def client(port: int, keys: int, stats: Stats, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    operations = [op for op, weight in MIX for _ in range(weight)]
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats.failures += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while not stop.is_set():
                op = rng.choice(operations)
                name = "soak" + letters(rng.randrange(keys))
                if op == "PUT":
                    year, day = 1940 + rng.randrange(80), 1 + rng.randrange(28)
                    body = f'{{"dateOfBirth":"{year}-{1 + rng.randrange(12):02d}-{day:02d}"}}'
                    request = (
                        f"PUT /hello/{name} HTTP/1.1\r\nHost: soak\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                    )
                else:
                    request = f"{op} /hello/{name} HTTP/1.1\r\nHost: soak\r\n\r\n"
                started = time.perf_counter()
                writer.write(request.encode())
                status = await read_response(reader)
                stats.latencies.append(time.perf_counter() - started)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            stats.failures += 1
        finally:
            writer.close()


def start_service(binary: str, data_dir: str, cache_mb: int) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIRTHDAY_") and k != "DATABASE_URL"}
    env["RUST_LOG"] = "warn,birthday_api=info,birthday_api::telemetry=warn"
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
         "--data-dir", data_dir, "--cache-mb", str(cache_mb), "--log-format", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )
    deadline = time.monotonic() + 30
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if match:
            # Keep draining stderr so the service never blocks on the pipe.
            import threading

            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return process, int(match.group(1))
    process.kill()
    raise SystemExit("the service did not start")


def svg_plot(samples: list[dict], warmup_s: float, path: Path) -> None:
    """Two stacked line charts (RSS MiB, p99 ms) over time, no dependencies."""
    width, height, margin = 760, 220, 50
    charts = [("RSS (MiB)", [s["rss_kib"] / 1024 for s in samples], "#1f77b4"),
              ("p99 latency (ms)", [s["p99_ms"] for s in samples], "#d62728")]
    times = [s["t_s"] for s in samples]
    t_max = max(times) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height * 2}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height * 2}" fill="white"/>']
    for index, (title, values, colour) in enumerate(charts):
        top = index * height
        v_max = max(values) * 1.15 or 1
        def x(t: float) -> float:
            return margin + (width - 2 * margin) * t / t_max
        def y(v: float) -> float:
            return top + height - margin / 2 - (height - margin) * v / v_max
        parts.append(f'<text x="{margin}" y="{top + 16}" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{margin}" y1="{y(0)}" x2="{width - margin}" y2="{y(0)}" stroke="#888"/>')
        parts.append(f'<line x1="{margin}" y1="{y(0)}" x2="{margin}" y2="{y(v_max)}" stroke="#888"/>')
        for tick in (0, v_max / 2 / 1.15, v_max / 1.15):
            parts.append(f'<text x="{margin - 4}" y="{y(tick) + 4}" text-anchor="end">{tick:.1f}</text>')
        for tick in (0, t_max / 2, t_max):
            parts.append(f'<text x="{x(tick)}" y="{y(0) + 16}" text-anchor="middle">{tick:.0f} s</text>')
        parts.append(f'<line x1="{x(warmup_s)}" y1="{y(0)}" x2="{x(warmup_s)}" y2="{y(v_max)}" '
                     f'stroke="#999" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x(warmup_s) + 4}" y="{y(v_max) + 12}" fill="#666">end of warm-up</text>')
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


async def prefill(port: int, keys: int, connections: int) -> None:
    async def fill(first: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for number in range(first, keys, connections):
                body = f'{{"dateOfBirth":"{1940 + number % 80}-{1 + number % 12:02d}-{1 + number % 28:02d}"}}'
                writer.write((f"PUT /hello/soak{letters(number)} HTTP/1.1\r\nHost: soak\r\n"
                              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
                status = await read_response(reader)
                if status != 204:
                    raise SystemExit(f"prefill: PUT answered {status}")
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(fill(first) for first in range(connections)))
    print(f"soak: stored {keys} keys in {time.monotonic() - started:.1f} s", flush=True)


async def soak(args: argparse.Namespace, port: int, pid: int) -> list[dict]:
    await prefill(port, args.keys, args.connections)
    stats = Stats()
    stop = asyncio.Event()
    clients = [asyncio.create_task(client(port, args.keys, stats, stop, seed))
               for seed in range(args.connections)]
    samples = []
    started = time.monotonic()
    next_sample = started + args.interval
    while time.monotonic() - started < args.duration:
        await asyncio.sleep(max(0.0, next_sample - time.monotonic()))
        next_sample += args.interval
        latencies, statuses, failures = stats.take()
        latencies.sort()
        sample = {
            "t_s": round(time.monotonic() - started, 1),
            "rss_kib": rss_kib(pid),
            "requests": len(latencies),
            "rps": round(len(latencies) / args.interval, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "max_ms": round((latencies[-1] if latencies else 0) * 1000, 2),
            "server_errors": sum(n for status, n in statuses.items() if status >= 500),
            "unexpected": sum(n for status, n in statuses.items() if status not in (200, 204, 404)),
            "failures": failures,
        }
        samples.append(sample)
        print(f"  t={sample['t_s']:6.1f}s rss={sample['rss_kib'] / 1024:6.1f} MiB "
              f"rps={sample['rps']:7.1f} p50={sample['p50_ms']:6.2f} ms p99={sample['p99_ms']:7.2f} ms "
              f"5xx={sample['server_errors']} failed={sample['failures']}", flush=True)
    stop.set()
    await asyncio.wait(clients, timeout=5)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/birthday-api")
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the RSS baseline (default: a fifth of the duration)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between samples")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--keys", type=int, default=200_000,
                        help="distinct usernames, all stored before the clock starts (default 200000)")
    parser.add_argument("--cache-mb", type=int, default=32,
                        help="the service's sled cache; RSS settles once it is full (default 32, as in production)")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth after warm-up")
    parser.add_argument("--out", default="target/soak")
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else args.duration / 5

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="birthday-soak-")
    process, port = start_service(args.binary, data_dir, args.cache_mb)
    print(f"soak: {args.duration:.0f} s, {args.connections} connections, {args.keys} keys, "
          f"pid {process.pid}, port {port}", flush=True)
    try:
        samples = asyncio.run(soak(args, port, process.pid))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)

    after_warmup = [s for s in samples if s["t_s"] >= warmup]
    if len(after_warmup) < 2:
        print("soak: too short for a verdict (fewer than two samples after warm-up)")
        return 1
    baseline, final = after_warmup[0]["rss_kib"], after_warmup[-1]["rss_kib"]
    peak = max(s["rss_kib"] for s in after_warmup)
    growth = (final - baseline) / baseline
    total = sum(s["requests"] for s in samples)
    all_p99 = sorted(s["p99_ms"] for s in after_warmup)
    summary = {
        "duration_s": args.duration, "warmup_s": warmup, "connections": args.connections, "keys": args.keys,
        "cache_mb": args.cache_mb,
        "binary": args.binary, "requests": total, "mean_rps": round(total / args.duration, 1),
        "rss_baseline_kib": baseline, "rss_final_kib": final, "rss_peak_kib": peak,
        "rss_growth": round(growth, 4), "max_growth": args.max_growth,
        "p50_ms_median": sorted(s["p50_ms"] for s in after_warmup)[len(after_warmup) // 2],
        "p99_ms_median": all_p99[len(all_p99) // 2], "p99_ms_worst": all_p99[-1],
        "server_errors": sum(s["server_errors"] for s in samples),
        "unexpected": sum(s["unexpected"] for s in samples),
        "failures": sum(s["failures"] for s in samples),
    }
    with open(out / "soak.csv", "w", encoding="utf-8") as csv:
        columns = list(samples[0])
        csv.write(",".join(columns) + "\n")
        for sample in samples:
            csv.write(",".join(str(sample[c]) for c in columns) + "\n")
    (out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1) + "\n")
    svg_plot(samples, warmup, out / "soak.svg")

    ok = growth < args.max_growth and summary["server_errors"] == 0 and summary["failures"] == 0 \
        and summary["unexpected"] == 0
    print(f"soak: {total} requests ({summary['mean_rps']}/s); RSS after warm-up {baseline / 1024:.1f} MiB -> "
          f"{final / 1024:.1f} MiB ({growth:+.1%}, limit {args.max_growth:.0%}), peak {peak / 1024:.1f} MiB; "
          f"p99 median {summary['p99_ms_median']} ms, worst {summary['p99_ms_worst']} ms; "
          f"5xx {summary['server_errors']}, broken connections {summary['failures']}, "
          f"other statuses {summary['unexpected']}: {'PASS' if ok else 'FAIL'}")
    print(f"soak: results in {out}/soak.csv, soak.json, soak.svg")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
