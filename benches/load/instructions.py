#!/usr/bin/env python3
"""`just bench-instructions`: what one request costs the service, in instructions.

Wall-clock numbers on this shared 2-core machine move by 10-30 % between runs;
instruction counts do not. This runs the service under callgrind, counting
only while the tokio worker polls a task (the request path, the store's
`get`/`insert` included; not sled's threads, the log writer or start-up),
sends warm-up requests, zeroes the counters, then sends R and, in a second
run, 2R requests over 4 keep-alive connections to a 20 000-user store. The
difference of the two runs divided by R is the cost of one request: whatever
does not grow with the number of requests (timers, the metrics upkeep, the
final dump) cancels out.

It prints instructions per request for GET and PUT, the part spent in the
store (`SledStore`), and keeps the callgrind files in target/instructions/
for `callgrind_annotate --inclusive=yes`. With `INSTR_SERVERS=service,bare-sled`
it measures `bare-sled` (benches/load/bare_sled.rs: poem on the same store,
nothing else) the same way, so that the difference is what the service's own
layers cost (profiles named callgrind-bare-sled-*).

Needs valgrind (`apt-get install -y valgrind`). Builds the release binary with
line tables and symbols into target/instructions/ (same code as the release
build, so the counts hold for it).

Configuration (environment):
  INSTR_REQUESTS   R (default 2000)
  INSTR_OPS        comma list (default GET,PUT)
  INSTR_SERVERS    comma list of service, bare-sled (default service)
  INSTR_BINARY     a prebuilt service binary to measure instead of building one
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
# The load benchmark's users: naming scheme, dates, and their import lines.
from bench import bench_date_of_birth as date_of_birth  # noqa: E402
from bench import bench_username as username  # noqa: E402
from bench import jsonl  # noqa: E402
OUT = ROOT / "target" / "instructions"
REQUESTS = int(os.environ.get("INSTR_REQUESTS", "2000"))
OPS = [op for op in os.environ.get("INSTR_OPS", "GET,PUT").split(",") if op]
SERVERS = [name for name in os.environ.get("INSTR_SERVERS", "service").split(",") if name]
if unknown := set(SERVERS) - {"service", "bare-sled"}:
    sys.exit(f"INSTR_SERVERS: unknown {', '.join(sorted(unknown))} (service, bare-sled)")
USERS = 20_000
WARM_UP = 300
PUBLIC, ADMIN = 18480, 18481
TASK_POLL = "*tokio::runtime::task::raw::poll*"


def build(target: list[str], path: str) -> Path:
    env = dict(
        os.environ,
        CARGO_PROFILE_RELEASE_STRIP="none",
        CARGO_PROFILE_RELEASE_DEBUG="line-tables-only",
    )
    subprocess.run(
        ["cargo", "build", "--release", "--locked", *target, "--target-dir", str(OUT / "build")],
        cwd=ROOT,
        env=env,
        check=True,
    )  # fmt: skip
    return OUT / "build" / "release" / path


def build_service() -> Path:
    if os.environ.get("INSTR_BINARY"):
        return Path(os.environ["INSTR_BINARY"]).resolve()
    return build(["--bin", "birthday-api"], "birthday-api")


def server_command(server: str, binary: Path, data_dir: Path) -> list[str]:
    if server == "bare-sled":
        return [str(binary), "--listen", f"127.0.0.1:{PUBLIC}", "--data-dir", str(data_dir)]
    return [
        str(binary), "serve", "--listen", f"127.0.0.1:{PUBLIC}", "--admin-listen", f"127.0.0.1:{ADMIN}",
        "--data-dir", str(data_dir),
    ]  # fmt: skip


def import_users(binary: Path, data_dir: Path) -> None:
    subprocess.run(
        [str(binary), "import", "--data-dir", str(data_dir)],
        input=b"".join(jsonl(USERS)),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def wait_ready(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}; see {OUT / 'server.log'}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("the server was not ready within 120 s under callgrind")


def send(conns: list[http.client.HTTPConnection], op: str, count: int, rng: random.Random) -> None:
    for k in range(count):
        conn = conns[k % len(conns)]
        user = username(rng.randrange(USERS))
        if op == "GET":
            conn.request("GET", f"/hello/{user}")
        else:
            body = f'{{"dateOfBirth":"{date_of_birth(rng.randrange(USERS))}"}}'
            conn.request("PUT", f"/hello/{user}", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status not in (200, 204):
            sys.exit(f"{op} /hello/{user} answered {response.status}")


def total_instructions(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    sys.exit(f"no totals in {path}")


def store_instructions(path: Path, op: str) -> int:
    """Inclusive instructions of the sled store's `get` or `put`, from the
    profile (the largest of the entries callgrind lists for it)."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(path)], capture_output=True, text=True, check=True
    ).stdout
    name = f"SledStore as birthday_api::store::Store>::{op.lower()}::{{{{closure}}}}"
    counts = [
        int(line.split()[0].replace(",", ""))
        for line in annotated.splitlines()
        if name in line and line.split() and line.split()[0].replace(",", "").isdigit()
    ]
    return max(counts, default=0)


def measure(server: str, binary: Path, store: Path, op: str, requests: int) -> Path:
    """One callgrind run with `requests` counted requests; returns its profile."""
    data_dir = Path(tempfile.mkdtemp(prefix="instr-", dir=OUT))
    shutil.copytree(store, data_dir, dirs_exist_ok=True)
    prefix = "callgrind" if server == "service" else f"callgrind-{server}"
    profile = OUT / f"{prefix}-{op.lower()}-{requests}.out"
    for old in OUT.glob(profile.name + "*"):
        old.unlink()
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}",
        f"--toggle-collect={TASK_POLL}", "--collect-atstart=no",
        *server_command(server, binary, data_dir),
    ]  # fmt: skip
    with open(OUT / "server.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, RUST_LOG="info"))
    try:
        wait_ready(proc, PUBLIC if server == "bare-sled" else ADMIN)
        conns = [http.client.HTTPConnection("127.0.0.1", PUBLIC, timeout=120) for _ in range(4)]
        rng = random.Random(7)
        send(conns, op, WARM_UP, rng)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        send(conns, op, requests, rng)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    dumps = sorted(OUT.glob(profile.name + ".*"))
    if not dumps:
        sys.exit(f"callgrind wrote no dump for {op} ({profile})")
    dumps[0].replace(profile)
    for extra in OUT.glob(profile.name + ".*"):
        extra.unlink()
    return profile


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("needs valgrind: apt-get install -y valgrind")
    OUT.mkdir(parents=True, exist_ok=True)
    service = build_service()
    binaries = {"service": service}  # the service also imports the store
    if "bare-sled" in SERVERS:
        binaries["bare-sled"] = build(["--example", "bare-sled"], "examples/bare-sled")
    store = OUT / "store-20000"
    if not store.exists():
        import_users(service, store)
    for server in SERVERS:
        binary = binaries[server]
        print(f"{binary}: instructions per request (worker task polls; {REQUESTS} vs {2 * REQUESTS} requests)")
        for op in OPS:
            once, twice = (measure(server, binary, store, op, n) for n in (REQUESTS, 2 * REQUESTS))
            per_request = (total_instructions(twice) - total_instructions(once)) / REQUESTS
            in_store = store_instructions(twice, op) / (2 * REQUESTS)
            print(f"  {op:4s} {per_request:8.0f}   of which the sled store {in_store:7.0f}   profile: {twice}")


if __name__ == "__main__":
    main()
