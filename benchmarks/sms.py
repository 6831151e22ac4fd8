"""SMS: segments per answer per language, and MO-to-MT latency through real Kannel.

    python -m benchmarks.sms [--users 5] [--per-user 6] [--segments-only]   (or: make benchmark-sms)

Segments: every answer (greet, topics, job check, danger...) rendered for SMS in every
language with the language's default country, composed within the 3-segment budget; compared
with the same answer's full (Telegram) text. Latency: phone -> fake SMSC -> bearerbox -> smsbox ->
gateway -> Rasa -> outbox -> sendsms -> bearerbox -> phone, on loopback with the real model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.performance import BENCH_PORTS, sample_messages
from bot.config import ROOT, Settings
from bot.content import load_catalog
from bot.content.render import COUNTRY_INTENTS, SIMPLE_ANSWERS, Renderer
from bot.evaluation import percentile, print_table
from bot.sms import segments
from bot.sms.compose import ELLIPSIS, compose
from bot.sms.gateway import SmsSettings

INTENTS = ["greet", "job_offer", *SIMPLE_ANSWERS, *sorted(COUNTRY_INTENTS), "out_of_scope"]


def segment_table(max_segments: int = 3) -> None:
    catalog = load_catalog(ROOT / "data")
    sms, full = Renderer(catalog, "sms"), Renderer(catalog)
    print(f"\nSMS segments per answer ({len(INTENTS)} answers, default country, budget {max_segments})")
    print(f"{'lang':<6}{'encoding':>9}{'mean':>6}{'max':>5}{'shortened':>10}{'full text mean':>16}{'full max':>9}")
    for language in catalog.languages:
        country = catalog.default_country(language)
        counts, cut, full_counts = [], 0, []
        coding = ""
        for intent in INTENTS:
            fold = language in SmsSettings().gsm_fold_languages
            intro = sms.t("sms_menu_intro", language)
            reply = compose(sms.answer(intent, language, country), intro, max_segments, gsm_fold=fold)
            count = segments.count(reply.text)
            counts.append(count.segments)
            coding = count.encoding
            cut += ELLIPSIS in reply.text
            whole = "\n".join(m.text for m in full.answer(intent, language, country))
            full_counts.append(segments.count(whole).segments)
        print(
            f"{language:<6}{coding:>9}{statistics.mean(counts):>6.1f}{max(counts):>5}{cut:>10}"
            f"{statistics.mean(full_counts):>16.1f}{max(full_counts):>9}"
        )


async def kannel_latency(settings: Settings, users: int, per_user: int) -> tuple[list[float], float]:
    from aiohttp import web

    from bot.cli import open_pipeline
    from bot.sms.gateway import SmsGateway, SmsSettings
    from bot.sms.keywords import CallingCodes, Keywords
    from bot.sms.providers.kannel import KannelConfig, KannelProvider
    from bot.sms.store import SmsStore
    from tests.kannel import Kannel, Phone, free_port

    kannel = Kannel(Path(tempfile.mkdtemp(prefix="sp-bench-kannel-")), gateway_port=free_port())
    kannel.start()
    phone = Phone(kannel.ports.fake_port)
    messages = sample_messages(users * per_user)
    latencies: list[float] = []
    try:
        provider = KannelProvider(KannelConfig(kannel.sendsms_url, kannel.username, kannel.password, kannel.mo_key, "1300"))
        async with open_pipeline(settings, variant="sms") as pipeline:
            gateway = SmsGateway(
                pipeline, SmsStore(pipeline.handoff.engine, pipeline.pepper), [provider],
                Keywords.from_data(settings.data_dir), CallingCodes.from_data(settings.data_dir),
                SmsSettings(poll_interval=0.05),
            )  # fmt: skip
            runner = web.AppRunner(gateway.web_app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", kannel.gateway_port).start()
            stop = asyncio.Event()
            task = asyncio.create_task(gateway.run(stop))
            replies: dict[str, asyncio.Queue[float]] = {f"+6681{i:07d}": asyncio.Queue() for i in range(users)}
            loop = asyncio.get_running_loop()

            def pump() -> None:  # phone thread -> per-number arrival times
                while not stop.is_set():
                    try:
                        received = phone.receive(timeout=0.5)
                    except queue.Empty:
                        received = None
                    if received is not None and received.receiver in replies:
                        loop.call_soon_threadsafe(replies[received.receiver].put_nowait, time.perf_counter())

            pumping = asyncio.create_task(asyncio.to_thread(pump))

            async def user(index: int, number: str) -> None:
                for turn in range(per_user):
                    started = time.perf_counter()
                    phone.send(number, messages[index * per_user + turn])
                    arrived = await asyncio.wait_for(replies[number].get(), timeout=120)
                    latencies.append((arrived - started) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(user(i, n) for i, n in enumerate(replies)))
            elapsed = time.perf_counter() - started
            stop.set()
            await task
            await pumping
            await runner.cleanup()
            await gateway.close()
    finally:
        phone.close()
        kannel.stop()
    return latencies, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--per-user", type=int, default=6)
    parser.add_argument("--segments-only", action="store_true")
    args = parser.parse_args()
    segment_table()
    if args.segments_only:
        return
    from bot.stack import running_stack

    os.environ.update(BENCH_PORTS)
    os.environ["SP_VAR_DIR"] = tempfile.mkdtemp(prefix="sp-bench-sms-")
    settings = Settings()
    with running_stack(settings, quiet=True) as stack:
        latencies, elapsed = asyncio.run(kannel_latency(stack.settings, args.users, args.per_user))
    rows = [
        ("CPU cores", str(os.cpu_count())),
        ("numbers texting at once", str(args.users)),
        ("SMS answered", str(len(latencies))),
        ("SMS per second", f"{len(latencies) / elapsed:.1f}"),
        ("MO -> MT latency p50", f"{percentile(latencies, 50):.0f} ms"),
        ("MO -> MT latency p95", f"{percentile(latencies, 95):.0f} ms"),
        ("MO -> MT latency max", f"{max(latencies):.0f} ms"),
    ]
    print_table(rows, "SMS through Kannel (fake SMSC on loopback, real bearerbox + smsbox)")


if __name__ == "__main__":
    main()
