"""Aggregate, anonymous statistics for the NGO: messages per day per channel, language and topic,
escalations, and time-to-claim. Counters only - no user key, no text, no address - so they
survive erasure and the retention job by design.

    python -m bot stats [--days 30] [--png stats.png]
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.db import metadata

daily = sa.Table(
    "stats_daily",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # UTC date, YYYY-MM-DD
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("language", sa.String(8), primary_key=True),
    sa.Column("topic", sa.String(24), primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False, default=0),
    sa.Column("escalations", sa.Integer, nullable=False, default=0),
)
claim_waits = sa.Table(
    "stats_claim_waits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.String(10), nullable=False, index=True),
    sa.Column("seconds", sa.Float, nullable=False),
)


def day_of(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")


def record_turn(
    engine: sa.engine.Engine, channel: str, language: str, topic: str, escalated: bool, at: float | None = None
) -> None:
    """+1 message (and +1 escalation) for today's (channel, language, topic) counter."""
    key = {"day": day_of(at or time.time()), "channel": channel[:16], "language": language[:8], "topic": topic[:24]}
    condition = sa.and_(*(daily.c[k] == v for k, v in key.items()))
    for _ in range(3):  # two gateways may create the same row at once
        try:
            with engine.begin() as conn:
                changed = conn.execute(
                    daily.update()
                    .where(condition)
                    .values(messages=daily.c.messages + 1, escalations=daily.c.escalations + int(escalated))
                ).rowcount
                if not changed:
                    conn.execute(daily.insert().values(**key, messages=1, escalations=int(escalated)))
            return
        except sa.exc.IntegrityError:
            continue


def record_claim_wait(conn: Any, seconds: float, at: float) -> None:
    conn.execute(claim_waits.insert().values(day=day_of(at), seconds=max(seconds, 0.0)))


@dataclass(frozen=True)
class Report:
    days: list[str]
    messages: dict[str, dict[str, int]]  # day -> language -> messages
    topics: dict[str, int]
    escalations: dict[str, int]  # day -> escalations
    claim_seconds: list[float]


def report(engine: sa.engine.Engine, days: int = 30, now: float | None = None) -> Report:
    end = dt.datetime.fromtimestamp(now or time.time(), dt.timezone.utc).date()
    span = [(end - dt.timedelta(days=n)).strftime("%Y-%m-%d") for n in range(days - 1, -1, -1)]
    messages: dict[str, dict[str, int]] = {d: {} for d in span}
    topics: dict[str, int] = {}
    escalations: dict[str, int] = {d: 0 for d in span}
    with engine.connect() as conn:
        for row in conn.execute(sa.select(daily).where(daily.c.day >= span[0])):
            per_language = messages.setdefault(row.day, {})
            per_language[row.language] = per_language.get(row.language, 0) + row.messages
            topics[row.topic] = topics.get(row.topic, 0) + row.messages
            escalations[row.day] = escalations.get(row.day, 0) + row.escalations
        waits = [r.seconds for r in conn.execute(sa.select(claim_waits.c.seconds).where(claim_waits.c.day >= span[0]))]
    return Report(span, messages, topics, escalations, waits)


def print_report(result: Report) -> None:
    from bot.evaluation import percentile

    languages = sorted({lang for per in result.messages.values() for lang in per})
    print(f"\nMessages per day and language ({result.days[0]} .. {result.days[-1]}, UTC)")
    print(f"{'day':<12}" + "".join(f"{lang:>6}" for lang in languages) + f"{'total':>8}{'escal.':>8}")
    for day in result.days:
        per = result.messages.get(day, {})
        if not per and not result.escalations.get(day):
            continue
        cells = "".join(f"{per.get(lang, 0):>6}" for lang in languages)
        print(f"{day:<12}{cells}{sum(per.values()):>8}{result.escalations.get(day, 0):>8}")
    print("\nMessages per topic")
    for topic, count in sorted(result.topics.items(), key=lambda item: -item[1]):
        print(f"  {topic:<16}{count:>8}")
    waits = result.claim_seconds
    if waits:
        print(
            f"\nTime to claim ({len(waits)} claims): median {percentile(waits, 50) / 60:.1f} min, "
            f"p90 {percentile(waits, 90) / 60:.1f} min, max {max(waits) / 60:.1f} min"
        )
    else:
        print("\nTime to claim: no claims in this period")


def write_png(result: Report, path: Path) -> None:
    """Stacked bars of messages per language per day, with escalations as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    languages = sorted({lang for per in result.messages.values() for lang in per})
    figure, axis = plt.subplots(figsize=(max(6.0, len(result.days) * 0.35), 4.0))
    bottom = [0] * len(result.days)
    for language in languages:
        values = [result.messages.get(day, {}).get(language, 0) for day in result.days]
        axis.bar(result.days, values, bottom=bottom, label=language)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.plot(
        result.days, [result.escalations.get(d, 0) for d in result.days], color="black", marker="o", label="escalations"
    )
    axis.set_ylabel("messages")
    axis.set_title("Safe Passage: messages per day by language (anonymous counts)")
    axis.tick_params(axis="x", labelrotation=90, labelsize=7)
    axis.legend(fontsize=7, ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
