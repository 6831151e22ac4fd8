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
from typing import Any

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


class SealedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, keys: str | None = None, **kwargs: Any) -> None:
        self._cipher = keyring(keys if keys is not None else os.environ.get("SP_TRACKER_KEYS", ""))
        self._wanted: set[str] = set()  # senders whose next saved tracker the channel takes
        self._kept: dict[str, DialogueStateTracker] = {}
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
        with self.session_scope() as session:
            rows = []
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                rows.append(
                    {
                        "sender_id": tracker.sender_id,
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
            session.commit()
        if tracker.sender_id in self._wanted:
            self._kept[tracker.sender_id] = tracker

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
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions)
            # Rasa's query (same rows, same order), the sealed column only: no ORM object per event,
            # read on every turn for every event of the session (docs/performance.md)
            events = [self._open(data) for (data,) in query.with_entities(self.SQLEvent.data).all()]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None
