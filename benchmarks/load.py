"""Load on loopback: messages/s and p50/p95/p99 latency at 10, 50 and 200 concurrent users,
for one Rasa instance and for two, on the production stores (PostgreSQL tracker + gateway
database, Redis locks; real servers from the Debian packages, started here).

    python -m benchmarks.load [--users 10 50 200] [--messages 600]   (or: make benchmark-load)

Each user sends held-out messages (ones the screener does not escalate) one after another
(no think time: saturation) through the
gateway pipeline -> Rasa HTTP -> action server. Bounded: at most --messages per run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from benchmarks.performance import sample_messages
from bot.cli import open_pipeline
from bot.config import ROOT, Settings
from bot.evaluation import percentile
from bot.risk.screener import load_screener
from bot.stack import Stack, ensure_model
from bot.text import normalize
from tests.kannel import free_port
from tests.services import Postgres, Redis


def ordinary_messages(count: int) -> list[str]:
    """Held-out messages the screener does not escalate: an escalated user is handed to a
    counsellor and never reaches Rasa again, which would measure the wrong path."""
    screener = load_screener(ROOT / "data")
    pool = [t for t in sample_messages(count * 3) if not screener.screen(normalize(t).text).urgent]
    return [pool[i % len(pool)] for i in range(count)]


async def load(settings: Settings, users: int, total: int, run_id: str) -> tuple[list[float], float, int]:
    per_user = max(1, total // users)
    texts = ordinary_messages(users * per_user)
    latencies: list[float] = []
    fallbacks = 0
    async with open_pipeline(settings) as pipeline:
        await pipeline.handle("bench", "warm-up", "hello")

        async def user(index: int) -> None:
            nonlocal fallbacks
            for turn in range(per_user):
                started = time.perf_counter()
                result = await pipeline.handle("bench", f"load-{run_id}-{users}-{index}", texts[index * per_user + turn])
                latencies.append((time.perf_counter() - started) * 1000)
                fallbacks += bool({"rasa_unavailable", "actions_unavailable"} & set(result.notes))

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(users)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, fallbacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--messages", type=int, default=600, help="messages per run (bound)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-load-"))
    workdir.chmod(0o755)
    postgres, redis = Postgres(workdir / "pg"), Redis(workdir)
    (workdir / "pg").mkdir()
    postgres.start()
    redis.start()
    stacks: list[Stack] = []
    try:
        base = dataclasses.replace(
            Settings(),
            var_dir=workdir / "var",
            db_url=postgres.create_database("gateway"),
            tracker_url=postgres.create_database("rasa"),
            redis_url=redis.url,
            rasa_urls="",
        )
        os.environ.pop("SP_ACTION_URL", None)
        instances = [dataclasses.replace(base, rasa_port=free_port(), action_port=free_port()) for _ in range(2)]
        model = ensure_model(base)
        for settings in instances:
            stack = Stack(settings)
            stack.start(model)
            stacks.append(stack)
        instances = [stack.settings for stack in stacks]  # where they really listen
        urls = [f"http://127.0.0.1:{s.rasa_port}" for s in instances]
        rows = []
        for label, rasa_urls in (("1 Rasa + 1 actions", urls[0]), ("2 Rasa + 2 actions", ",".join(urls))):
            gateway = dataclasses.replace(instances[0], rasa_urls=rasa_urls)
            for users in args.users:
                run_id = f"{len(rasa_urls.split(','))}x"
                latencies, elapsed, fallbacks = asyncio.run(load(gateway, users, args.messages, run_id))
                rows.append((label, users, len(latencies), len(latencies) / elapsed, latencies, fallbacks))
                print(f"  {label}, {users} users: {len(latencies) / elapsed:.1f} msg/s", flush=True)
    finally:
        for stack in stacks:
            stack.stop()
        redis.stop()
        postgres.stop()
    print(f"\nLoad on loopback ({os.cpu_count()} cores; PostgreSQL tracker + gateway DB, Redis locks)")
    print(f"{'instances':<20}{'users':>6}{'msgs':>6}{'msg/s':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'fallback':>9}")
    for label, users, count, rate, latencies, fallbacks in rows:
        print(
            f"{label:<20}{users:>6}{count:>6}{rate:>7.1f}{percentile(latencies, 50):>8.0f}"
            f"{percentile(latencies, 95):>8.0f}{percentile(latencies, 99):>8.0f}{fallbacks:>9}"
        )


if __name__ == "__main__":
    main()
