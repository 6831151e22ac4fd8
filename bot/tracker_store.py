"""Rasa's SQL tracker store with every event sealed at rest (SQLite and PostgreSQL alike).

Configured in ``endpoints.yml`` (``type: bot.tracker_store.SealedSQLTrackerStore``). Each row's
``data`` (her text, entities, slots: everything Rasa keeps) is a Fernet token under the keyring in
``SP_TRACKER_KEYS``. The columns Rasa queries on stay usable (``sender_id`` is already a
pseudonym; ``type_name`` and ``timestamp`` find the session start, retention cuts by time), and
``intent_name`` / ``action_name`` are left empty: "this pseudonym reported danger" is itself
sensitive, and nothing reads those columns back.

Rows written in clear by an older version are still read, and sealed when the store starts.
A row no key opens is an error for that conversation only, never silently dropped events.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

from bot.crypto import SEALED_PREFIX, keyring
from bot.db import SQLITE_FILE_POOL

logger = logging.getLogger(__name__)


class UnreadableTracker(RuntimeError):
    """A stored event that no key in SP_TRACKER_KEYS opens (a key was removed from the ring)."""


# What the database holds for a sender: (number of event rows, largest row id). Any append (by
# any process) raises the id; any delete (erasure, retention, rename) lowers the count.
RowStats = tuple[int, int | None]


@dataclass
class _Kept:
    """A tracker this process saved (or handed out), and what the database held then."""

    tracker: DialogueStateTracker
    events: int  # len(tracker.events) when saved or handed out: the rows already stored
    rows: RowStats
    domain: Any  # the domain it was built with (a model replaced at runtime drops it)
    at: float


class SealedSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store, sealed at rest, with her latest tracker kept in memory between
    turns (``cache_size`` senders, idle at most ``cache_seconds``).

    Rasa reads and replays her whole session on every turn: at turn 30 that was 58% of Rasa's CPU
    per message (SQL, Fernet, replay; docs/performance.md). The tracker saved at the end of a turn
    is therefore kept and handed back at her next turn when the database still holds exactly what
    this process saved (the same row count and largest id: one indexed aggregate query) - so an
    erasure, a retention cut, a rename or another Rasa server's turn all send the read back to the
    database. A kept tracker is handed out once (lent, then saved and kept again): two readers never
    share it, and a turn that fails before saving leaves nothing behind."""

    def __init__(
        self,
        *args: Any,
        keys: str | None = None,
        cache_size: int | str = 200,
        cache_seconds: float | str = 900.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self._cipher = keyring(keys if keys is not None else os.environ.get("SP_TRACKER_KEYS", ""))
        self._wanted: set[str] = set()  # senders whose next saved tracker the channel takes
        self._kept: dict[str, DialogueStateTracker] = {}
        self._cache: OrderedDict[str, _Kept] = OrderedDict()  # saved trackers, least recently used first
        self._lent: dict[str, _Kept] = {}  # trackers handed to a turn, until it saves them
        self.cache_size = int(cache_size)
        self.cache_seconds = float(cache_seconds)
        self._clock = clock
        super().__init__(*args, **kwargs)
        engine: sa.engine.Engine = self.engine  # type: ignore[has-type]
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            # Rasa's engine opens a new SQLite connection for every session (NullPool); pooled, as
            # the gateway's (bot/db.py): 3 sessions a message (docs/performance.md)
            engine.dispose()
            self.engine = sa.create_engine(engine.url, **SQLITE_FILE_POOL)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        sealed = self.seal_plain_events()
        if sealed:
            logger.info("sealed %d tracker events stored in clear by an older version", sealed)

    # -- sealing -------------------------------------------------------------------------
    def _seal(self, data: dict[str, Any]) -> str:
        return self._cipher.encrypt(json.dumps(data).encode()).decode()

    def _open(self, stored: str) -> dict[str, Any]:
        if not stored.startswith(SEALED_PREFIX):
            return json.loads(stored)  # an older version's clear row, sealed at the next start
        try:
            return json.loads(self._cipher.decrypt(stored.encode()))
        except InvalidToken:
            raise UnreadableTracker("a tracker event is sealed with a key missing from SP_TRACKER_KEYS") from None

    def seal_plain_events(self, batch: int = 500) -> int:
        """Seal rows written in clear (idempotent; cheap when there are none)."""
        sealed = 0
        event = self.SQLEvent
        while True:
            with self.session_scope() as session:
                rows = (
                    session.query(event)
                    .filter(event.data.isnot(None), ~event.data.startswith(SEALED_PREFIX))
                    .limit(batch)
                    .all()
                )
                if not rows:
                    return sealed
                for row in rows:
                    row.data = self._seal(json.loads(row.data))
                    row.intent_name = None
                    row.action_name = None
                session.commit()
                sealed += len(rows)

    def rekey(self, batch: int = 500) -> int:
        """Re-seal every event under the newest key (after a new key was put first in the ring)."""
        done = 0
        event = self.SQLEvent
        last_id = 0
        while True:
            with self.session_scope() as session:
                rows = session.query(event).filter(event.id > last_id).order_by(event.id).limit(batch).all()
                if not rows:
                    return done
                for row in rows:
                    row.data = self._seal(self._open(row.data))
                last_id = rows[-1].id
                session.commit()
                done += len(rows)

    # -- Rasa's interface ----------------------------------------------------------------
    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        sender = tracker.sender_id
        lent = self._lent.pop(sender, None)
        keep = None
        with self.session_scope() as session:
            rows_before = self._row_stats(session, sender)
            if lent is not None and lent.tracker is tracker and lent.rows == rows_before:
                # the tracker handed out for this turn, nothing changed in the database meanwhile
                stored, new_events = lent.events, list(tracker.events)[lent.events :]
            else:
                stored, new_events = -1, list(self._additional_events(session, tracker))
            rows = []
            for event in new_events:
                data = event.as_dict()
                rows.append(
                    {
                        "sender_id": sender,
                        "type_name": event.type_name,
                        "timestamp": data.get("timestamp"),
                        "intent_name": None,
                        "action_name": None,
                        "data": self._seal(data),
                    }
                )
            if rows:
                # one multi-row INSERT (psycopg2: execute_values) instead of the ORM's INSERT ... RETURNING
                # per event (a turn adds ~8): one round trip to PostgreSQL, ids still in event order
                session.execute(sa.insert(self.SQLEvent.__table__), rows)
            # kept only when it is what a read from the database would give: handed out by this
            # store, and no new session started in this turn (the database's read starts there)
            if stored >= 0 and self.cache_size > 0 and not any(isinstance(e, SessionStarted) for e in new_events):
                keep = _Kept(tracker, len(tracker.events), self._row_stats(session, sender), self.domain, self._clock())
            session.commit()
        if keep is not None:
            self._remember(sender, keep)
        if sender in self._wanted:
            self._kept[sender] = tracker

    def keep_next_save(self, sender_id: str) -> None:
        """The gateway channel wants the tracker Rasa saves next for ``sender_id`` (its turn summary):
        kept in memory until ``take_saved``, instead of being read back and replayed from the
        database once more (docs/performance.md)."""
        self._wanted.add(sender_id)

    def take_saved(self, sender_id: str) -> DialogueStateTracker | None:
        """The tracker saved since ``keep_next_save(sender_id)``, if any; forgets both."""
        self._wanted.discard(sender_id)
        return self._kept.pop(sender_id, None)

    def _event_query(self, session: Any, sender_id: str, fetch_events_from_all_sessions: bool) -> Any:
        """Rasa's query - her events since her latest ``session_started`` (all of them without one),
        in id order - with the session start as a scalar subquery. Rasa joins it as a derived
        table, which PostgreSQL may put inside a nested loop and run once per event row (on a young
        events table it did: 13 ms instead of 0.6 ms at 340 events, twice a turn - the read and
        the count before a save). A scalar subquery is computed once, whatever the plan."""
        event = self.SQLEvent
        query = session.query(event).filter(event.sender_id == sender_id)
        if not fetch_events_from_all_sessions:
            session_start = (
                session.query(sa.func.max(event.timestamp))
                .filter(event.sender_id == sender_id, event.type_name == SessionStarted.type_name)
                .scalar_subquery()
            )
            query = query.filter(sa.or_(event.timestamp >= session_start, session_start.is_(None)))
        return query.order_by(event.id)

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        if fetch_events_from_all_sessions:  # every session (Rasa's API, exports): always the database
            return self._read(sender_id, fetch_events_from_all_sessions=True)
        kept = self._cache.pop(sender_id, None)
        with self.session_scope() as session:
            rows = self._row_stats(session, sender_id)
        if kept is not None and (
            kept.rows != rows or kept.domain is not self.domain or self._clock() - kept.at > self.cache_seconds
        ):
            kept = None
        tracker = kept.tracker if kept is not None else self._read(sender_id, fetch_events_from_all_sessions=False)
        if tracker is not None:
            self._lent[sender_id] = _Kept(tracker, len(tracker.events), rows, self.domain, self._clock())
        return tracker

    def _read(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions)
            # Rasa's query (same rows, same order), the sealed column only: no ORM object per event,
            # read on every turn for every event of the session (docs/performance.md)
            events = [self._open(data) for (data,) in query.with_entities(self.SQLEvent.data).all()]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    # -- her tracker kept between turns ------------------------------------------------
    def _row_stats(self, session: Any, sender_id: str) -> RowStats:
        event = self.SQLEvent
        query = session.query(sa.func.count(event.id), sa.func.max(event.id))
        count, last = query.filter(event.sender_id == sender_id).one()
        return int(count), last

    def _remember(self, sender_id: str, kept: _Kept) -> None:
        self._cache[sender_id] = kept
        self._cache.move_to_end(sender_id)
        self._evict()

    def _evict(self) -> None:
        """Least recently used beyond ``cache_size``, and any idle longer than ``cache_seconds``
        (her decrypted words do not stay in memory after she has gone)."""
        now = self._clock()
        while self._cache:
            sender, oldest = next(iter(self._cache.items()))
            if len(self._cache) <= self.cache_size and now - oldest.at <= self.cache_seconds:
                break
            del self._cache[sender]

    def forget(self, sender_id: str) -> None:
        """Drop what this process keeps of her conversation (erasure, rename)."""
        self._cache.pop(sender_id, None)
        self._lent.pop(sender_id, None)
        self._kept.pop(sender_id, None)
        self._wanted.discard(sender_id)

    def cached_senders(self) -> list[str]:
        """Senders whose tracker is kept now (tests, diagnostics); expired ones are dropped first."""
        self._evict()
        return list(self._cache)
