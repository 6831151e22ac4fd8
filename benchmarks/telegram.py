"""Telegram channel throughput and latency, end to end with the real model.

    python -m benchmarks.telegram [--users 20] [--per-user 10]   (or: make benchmark-telegram)

One gateway process runs the real python-telegram-bot Application (long polling) against
the local fake Bot API server of the tests; each simulated user sends a message, waits
for the bot's reply, and sends the next. Latency = update available -> reply received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from benchmarks.performance import BENCH_PORTS, sample_messages
from bot.channels.telegram import TelegramBot, TelegramConfig, serve
from bot.cli import open_pipeline
from bot.config import Settings
from bot.desk import CounsellorDesk
from bot.evaluation import percentile, print_table
from bot.stack import running_stack
from tests.fake_telegram import FakeTelegram


async def simulate(settings: Settings, users: int, per_user: int) -> tuple[list[float], float]:
    fake = FakeTelegram()
    await fake.start()
    config = TelegramConfig(token=fake.token, api_url=fake.url, rate_limit=1000, poll_interval=0.5)
    stop = asyncio.Event()
    messages = sample_messages(users * per_user)
    latencies: list[float] = []
    async with open_pipeline(settings) as pipeline:
        bot = TelegramBot(config, pipeline, CounsellorDesk(pipeline.handoff, pipeline.catalog, pipeline.rasa))
        task = asyncio.create_task(serve(bot, stop))
        await fake.wait_for(lambda: any(c.method == "deleteWebhook" for c in fake.calls))

        async def user(index: int) -> None:
            chat = 10_000 + index
            for turn in range(per_user):
                before = len(fake.sent(chat))
                started = time.perf_counter()
                fake.say(chat, messages[index * per_user + turn])
                await fake.wait_for(lambda chat=chat, before=before: len(fake.sent(chat)) > before, timeout=120)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(users)))
        elapsed = time.perf_counter() - started
        stop.set()
        await task
    await fake.stop()
    return latencies, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10)
    args = parser.parse_args()
    os.environ.update(BENCH_PORTS)
    os.environ["SP_VAR_DIR"] = tempfile.mkdtemp(prefix="sp-bench-tg-")
    settings = Settings()
    with running_stack(settings, quiet=True) as stack:
        latencies, elapsed = asyncio.run(simulate(stack.settings, args.users, args.per_user))
    total = len(latencies)
    rows = [
        ("CPU cores", str(os.cpu_count())),
        ("concurrent users", str(args.users)),
        ("updates handled", str(total)),
        ("updates per second (no think time: saturation)", f"{total / elapsed:.1f}"),
        ("latency p50", f"{percentile(latencies, 50):.0f} ms"),
        ("latency p95", f"{percentile(latencies, 95):.0f} ms"),
        ("latency max", f"{max(latencies):.0f} ms"),
    ]
    print_table(rows, "Telegram (polling, fake Bot API on loopback)")


if __name__ == "__main__":
    main()
