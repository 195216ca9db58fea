"""Load test of the sidecar: decisions per second, latency and memory over many calls.

    python benchmarks/sidecar_load.py --bundle B --input planner_input.json \
        [--calls 20000] [--long 100000] [--connections 4] [--workers 1]

Starts ``planner serve``'s server (uvicorn, the ``serve`` extra; ``--workers`` processes on
one socket) in its own process on loopback, then drives it from this process with
``--connections`` keep-alive connections, each on its own thread, every call a JSON-RPC
``plan`` with the given input. Prints the throughput, the client-side latency p50/p99 (the
whole round trip), the error count, and the server's resident memory at the start and after
each tenth of a ``--long`` run (growth means a leak). Targets: >= 2,000 decisions/s,
p99 <= 5 ms, zero errors, no memory growth over 100,000 calls.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def serve(bundle: str, port_queue: Any, workers: int) -> None:
    from swarm_planner.core.config import parse_config
    from swarm_planner.kernel_integration.service import PlannerService
    from swarm_planner.kernel_integration.sidecar import Sidecar, bind, serve_workers

    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": bundle},
            "inference": {"confidence_threshold": 0.0},
        }
    )
    sock = bind("127.0.0.1", 0)
    port_queue.put(sock.getsockname()[1])
    if workers > 1:
        serve_workers(lambda: PlannerService(config), sock, workers)
    else:
        Sidecar(PlannerService(config), sock).run()


def rss_of(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (the workers)."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            pids += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    for p in pids:
        with open(f"/proc/{p}/statm") as handle:
            total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def drive(port: int, body: bytes, calls: int, connections: int) -> tuple[np.ndarray, int, float]:
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    per = calls // connections

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"content-type": "application/json"}
        mine = latencies[k]
        for _ in range(per):
            t0 = time.perf_counter()
            conn.request("POST", "/", body, headers)
            response = conn.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200 or b'"result"' not in data:
                errors[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    return np.array([x for ls in latencies for x in ls]) * 1e3, sum(errors), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--long", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    planner_input = json.loads(Path(args.input).read_text())
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "plan", "params": {"planner_input": planner_input}}
    ).encode()
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(
        target=serve, args=(args.bundle, ports, args.workers), daemon=False
    )
    server.start()
    port = ports.get(timeout=60)
    deadline = time.monotonic() + 60
    while True:  # the workers load the bundle after the socket is bound
        try:
            drive(port, body, 500, args.connections)  # warm-up
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    ms, errors, seconds = drive(port, body, args.calls, args.connections)
    print(
        f"{len(ms):,} plan calls, {args.workers} worker(s), {args.connections} connections: "
        f"{len(ms) / seconds:,.0f} decisions/s, p50 {np.percentile(ms, 50):.2f} ms, "
        f"p99 {np.percentile(ms, 99):.2f} ms, {errors} errors"
    )
    if args.long:
        before = rss_of(server.pid)  # type: ignore[arg-type]
        marks = []
        done = 0
        chunk = max(1, args.long // 10)
        while done < args.long:
            _, more, _ = drive(port, body, chunk, args.connections)
            errors += more
            done += chunk
            marks.append(rss_of(server.pid) / 2**20)  # type: ignore[arg-type]
        print(
            f"{done:,} more calls: server resident memory {before / 2**20:.1f} MiB before, "
            f"{' '.join(f'{m:.1f}' for m in marks)} MiB after each tenth; {errors} errors in all"
        )
    server.terminate()


if __name__ == "__main__":
    main()
