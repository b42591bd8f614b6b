"""Capture throughput from the Stored Completions API: sequential vs concurrent message fetching.

Starts the fake OpenAI server with a fixed latency per request, seeds N stored completions on one day
(plus neighbours on the days around it), and captures the day with concurrency 1 and with concurrency C.
The server runs in its own process, as the real API would (`--in-process` shares the client's process
and GIL, which makes the fake's own CPU time count against the client).

    python bench/openai_capture.py [--n 300] [--latency-ms 50] [--concurrency 32] [--in-process]

Goal: concurrent >= 10x sequential traces/s at 50 ms per request.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openai import OpenAI  # noqa: E402

from distill_pipeline.backends.openai_source import OpenAIStoredCompletionsSource, day_bounds  # noqa: E402
from distill_pipeline.core.capture import capture  # noqa: E402
from distill_pipeline_tests.fake_openai import FakeOpenAI  # noqa: E402

DAY = "2026-11-02"
METADATA = {"agent": "healthcare-postcall"}


def stored_completion(n: int, created: int) -> dict:
    cid = f"chatcmpl-bench{n:05d}"
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": f'{{"intent": "book_follow_up", "n": {n}}}'}}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 80, "total_tokens": 330},
        "metadata": {**METADATA, "intent": "book_follow_up", "ttft_ms": "420"},
        "request_messages": [
            {"id": f"{cid}-0", "role": "system", "content": "Summarise the call as JSON."},
            {"id": f"{cid}-1", "role": "user", "content": f"Caller {n}: I need to book a follow-up."},
        ],
    }


def seed(fake: FakeOpenAI, n: int) -> None:
    start, end = day_bounds(DAY)
    for i in range(n // 10):  # the day before and the day after
        fake.add_stored_completion(stored_completion(100_000 + i, start - 7200 + i))
        fake.add_stored_completion(stored_completion(200_000 + i, end + 60 + i))
    for i in range(n):
        fake.add_stored_completion(stored_completion(i, start + 30 + i * (86_000 // max(n, 1))))


class _Remote:
    """The parts of FakeOpenAI the bench uses, for a fake served by a child process."""

    def __init__(self, conn: Any, base_url: str) -> None:
        self.conn, self.base_url = conn, base_url

    def request_count(self) -> int:
        self.conn.send("count")
        return self.conn.recv()

    def clear_log(self) -> None:
        self.conn.send("clear")
        self.conn.recv()


def _serve(conn: Any, n: int, latency_s: float) -> None:
    with FakeOpenAI(latency_s=latency_s) as fake:
        seed(fake, n)
        conn.send(fake.base_url)
        while (command := conn.recv()) != "stop":
            if command == "clear":
                fake.clear_log()
            conn.send(len(fake.requests()))


@contextmanager
def fake_server(n: int, latency_s: float, in_process: bool):
    if in_process:
        with FakeOpenAI(latency_s=latency_s) as fake:
            seed(fake, n)
            fake.request_count = lambda: len(fake.requests())  # type: ignore[attr-defined]
            yield fake
        return
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, n, latency_s), daemon=True)
    process.start()
    try:
        yield _Remote(parent, parent.recv())
    finally:
        parent.send("stop")
        process.join(timeout=10)


def run(server: Any, concurrency: int) -> tuple[int, float, int]:
    client = OpenAI(api_key="sk-bench", base_url=server.base_url, max_retries=2, timeout=30)
    source = OpenAIStoredCompletionsSource(client, METADATA, concurrency=concurrency, page_size=100,
                                           log=logging.getLogger("bench"))
    server.clear_log()
    started = time.perf_counter()
    result = capture(source.records(DAY))
    elapsed = time.perf_counter() - started
    assert result.balanced and not result.quarantined, result.reasons()
    return len(result.rows), elapsed, server.request_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="stored completions on the captured day")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="fake server latency per request")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--in-process", action="store_true", help="serve the fake from this process")
    args = parser.parse_args()

    with fake_server(args.n, args.latency_ms / 1000, args.in_process) as server:
        where = "in this process" if args.in_process else "in its own process"
        print(f"{args.n} stored completions on {DAY}; fake API {where}, {args.latency_ms:g} ms per request")
        rates = {}
        for concurrency in (1, args.concurrency):
            rows, elapsed, requests = run(server, concurrency)
            rates[concurrency] = rows / elapsed
            print(f"concurrency {concurrency:>3}: {rows} traces in {elapsed:6.2f} s = {rates[concurrency]:7.1f} "
                  f"traces/s ({requests} requests)")
        ratio = rates[args.concurrency] / rates[1]
        print(f"speed-up: {ratio:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
