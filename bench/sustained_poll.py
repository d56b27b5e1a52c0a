"""Flower's tasks page as a browser tab keeps asking for it, from its own process.

    python -m bench.sustained_poll --port P [--interval 1]

Requests the first page of Flower's tasks table (``/tasks/datatable``, the
request its tasks page makes: 15 rows, newest first) every ``interval``
seconds until a line arrives on stdin, then prints one JSON line: the
answer times in milliseconds and the number of requests that failed.  Its
own process, so the time measured is Flower's, not the bench's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlencode

# The page's own defaults (flower/static/js/flower.js): 15 rows, by received, newest first.
PAGE_QUERY = urlencode(
    {
        "draw": 1,
        "start": 0,
        "length": 15,
        "search[value]": "",
        "order[0][column]": 0,
        "order[0][dir]": "desc",
        "columns[0][data]": "received",
    }
)
TIMEOUT = 30.0


def tasks_page(port: int, search: str = "", length: int = 15) -> tuple[float, dict]:
    """One request for the tasks table: (milliseconds, the decoded answer)."""
    query = PAGE_QUERY.replace("search%5Bvalue%5D=", "search%5Bvalue%5D=" + search)
    query = query.replace("length=15", f"length={length}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        started = time.perf_counter()
        conn.request("GET", f"/tasks/datatable?{query}")
        response = conn.getresponse()
        body = response.read()
        took = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        return took, json.loads(body)
    finally:
        conn.close()


def poll(port: int, interval: float, stop: threading.Event) -> tuple[list[float], int]:
    times: list[float] = []
    failed = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            took, _ = tasks_page(port)
            times.append(took)
        except (OSError, ValueError):
            failed += 1
        stop.wait(max(0.0, interval - (time.monotonic() - began)))
    return times, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    times, failed = poll(args.port, args.interval, stop)
    print(json.dumps({"ms": times, "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
