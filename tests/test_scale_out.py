"""Scale-out on real PostgreSQL + Redis: two Rasa servers (each with its own action server) share
the SQL tracker store and Redis locks; two gateways share the PostgreSQL gateway database.
One user's conversation alternates between them with no lost or reordered turn, and killing a
Rasa server mid-load loses no accepted message."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import open_pipeline
from bot.config import Settings
from bot.content import Catalog
from bot.stack import Stack, ensure_model
from tests.kannel import free_port
from tests.services import Postgres, Redis


@dataclasses.dataclass
class Cluster:
    tracker_url: str
    instances: list[Settings]
    stacks: list[Stack]

    def gateway(self, *indexes: int) -> Settings:
        """Gateway settings talking to the given Rasa server(s) (several = failover)."""
        urls = ",".join(f"http://127.0.0.1:{self.instances[i].rasa_port}" for i in indexes)
        # a turn moved off a dead server waits for its lock to expire (TICKET_LOCK_LIFETIME) behind
        # the other users' turns: give it more than the default 15 s before falling back
        return dataclasses.replace(self.instances[indexes[0]], rasa_urls=urls, rasa_timeout=40.0)


@pytest.fixture(scope="module")
def cluster(postgres: Postgres, redis_server: Redis) -> Iterator[Cluster]:
    tracker_url = postgres.create_database("rasa_scale_out")
    gateway_url = postgres.create_database("gateway_scale_out")
    var_dir = Path(tempfile.mkdtemp(prefix="sp-test-cluster-"))  # shared secrets (pepper, channel token)
    base = dataclasses.replace(
        Settings(), var_dir=var_dir, db_url=gateway_url, tracker_url=tracker_url, redis_url=redis_server.url, rasa_urls=""
    )
    saved = os.environ.pop("SP_ACTION_URL", None)
    instances = [dataclasses.replace(base, rasa_port=free_port(), action_port=free_port()) for _ in range(2)]
    model = ensure_model(base)
    stacks = [Stack(settings) for settings in instances]
    try:
        for stack in stacks:
            stack.start(model)
        yield Cluster(tracker_url, [stack.settings for stack in stacks], stacks)
    finally:
        for stack in stacks:
            stack.stop()
        if saved is not None:
            os.environ["SP_ACTION_URL"] = saved


def user_texts(tracker_url: str, sender: str, pepper: str) -> list[str]:
    """Her messages as stored (sealed) in the shared PostgreSQL tracker store, in order."""
    import json

    from bot.crypto import keyring, tracker_keys

    ring = keyring(tracker_keys([pepper]))
    engine = sa.create_engine(tracker_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select data from events where sender_id = :s and type_name = 'user' order by id"), {"s": sender}
        )
        texts = [json.loads(ring.decrypt(r[0].encode())).get("text") for r in rows]
    engine.dispose()
    return texts


def collapse(texts: list[str]) -> list[str]:
    """A retried message may be stored twice in a row (at-least-once); never lost or reordered."""
    return [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t]


def test_one_conversation_alternates_between_two_rasa_servers_and_two_gateways(cluster: Cluster, catalog: Catalog) -> None:
    user = "alternating-user"
    # payloads, so the test is about state, not NLU: the job-offer check is a Rasa form whose
    # progress lives in the shared tracker
    script = ["hello", "/job_offer", "/affirm", "/deny", "/affirm", "/deny", "/deny"]
    expected = [None, "job_check_offer", "job_check_q_fee", "job_check_q_passport", "job_check_q_contract",
                "job_check_q_licensed", "job_check_q_visa"]  # fmt: skip

    async def run() -> list[list[str]]:
        replies = []
        async with open_pipeline(cluster.gateway(0)) as first, open_pipeline(cluster.gateway(1)) as second:
            for index, text in enumerate(script):
                gateway = (first, second)[index % 2]  # A, B, A, B...: each turn on the other instance
                turn = await gateway.handle("test", user, text)
                assert not {"rasa_unavailable", "actions_unavailable"} & set(turn.notes)
                replies.append([m.text for m in turn.replies])
        return replies

    replies = asyncio.run(run())
    for got, key in zip(replies, expected, strict=True):
        if key is not None:
            assert any(catalog.text(key, "en") in r for r in got), (key, got)
    from bot.profiles import user_key

    sender = user_key(cluster.instances[0].secret("pepper", ""), "test", user)
    assert (
        user_texts(cluster.tracker_url, sender, cluster.instances[0].secret("pepper", "")) == script
    )  # every turn, once, in order


def test_a_dead_or_slow_action_server_still_gets_her_an_answer(cluster: Cluster, catalog: Catalog) -> None:
    second = cluster.stacks[1]
    actions = second.processes[0]  # started before its Rasa server
    actions.kill()
    actions.wait()

    async def run() -> list[str]:
        async with open_pipeline(cluster.gateway(1)) as gateway:
            turn = await gateway.handle("test", "actions-down-user", "what are my rights?")
            danger = await gateway.handle("test", "actions-down-user-2", "help they locked me in and took my passport")
            assert danger.escalate and danger.risk_level == "urgent"  # the screener needs no Rasa at all
            gateway.handoff.end_by_user(danger.escalation_id)  # type: ignore[arg-type]
            return [m.text for m in turn.replies]

    try:
        texts = asyncio.run(run())
        assert texts and texts[0] == catalog.text("service_unavailable", "en")  # hotlines, not silence
    finally:
        second.processes.remove(actions)
        second.start(ensure_model(cluster.instances[1]))  # back for the next test


def test_two_gateway_processes_share_one_conversation(cluster: Cluster, catalog: Catalog) -> None:
    """Real OS processes (`python -m bot ask`), each on its own Rasa server, one shared database."""
    import json
    import subprocess
    import sys

    from bot.config import ROOT

    user = "process-user"
    script = ["/job_offer", "/affirm", "/deny", "/affirm"]
    expected = ["job_check_offer", "job_check_q_fee", "job_check_q_passport", "job_check_q_contract"]
    for index, (text, key) in enumerate(zip(script, expected, strict=True)):
        instance = cluster.instances[index % 2]
        env = {
            **os.environ,
            "SP_VAR_DIR": str(instance.var_dir),
            "SP_DB_URL": instance.db_url,
            "SP_RASA_URL": f"http://127.0.0.1:{instance.rasa_port}",
        }
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ask"], input=json.dumps({"user": user, "text": text}) + "\n",
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        replies = json.loads(done.stdout.strip().splitlines()[-1])["replies"]
        assert any(catalog.text(key, "en") in r for r in replies), (key, replies)


def test_killing_a_rasa_server_mid_load_loses_no_accepted_message(cluster: Cluster) -> None:
    users, per_user = 8, 6
    messages = [f"what are my rights? ({n})" if n % 2 else f"give me the hotline number ({n})" for n in range(per_user)]
    answered: dict[str, int] = {}

    async def run() -> None:
        async with open_pipeline(cluster.gateway(0, 1)) as gateway:

            async def user(index: int) -> None:
                name = f"load-user-{index}"
                for text in messages:
                    turn = await gateway.handle("test", name, text)
                    assert turn.replies and not {"rasa_unavailable", "actions_unavailable"} & set(turn.notes), (name, text)
                    answered[name] = answered.get(name, 0) + 1

            async def killer() -> None:
                while sum(answered.values()) < users * per_user // 4:
                    await asyncio.sleep(0.05)
                victim = cluster.stacks[0].processes[-1]  # the first Rasa server (started after its actions)
                victim.kill()

            await asyncio.gather(killer(), *(user(i) for i in range(users)))

    asyncio.run(run())
    assert sum(answered.values()) == users * per_user
    from bot.profiles import user_key

    pepper = cluster.instances[0].secret("pepper", "")
    for index in range(users):
        stored = user_texts(cluster.tracker_url, user_key(pepper, "test", f"load-user-{index}"), pepper)
        assert collapse(stored) == messages, index
