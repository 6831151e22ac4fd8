"""Who may see and do what on the web desk: pure rules, no database, no web (unit-tested alone).

- Any signed-in account sees the queue (facts about cases, never her words).
- A counsellor opens a case that is waiting (to decide whether to take it), a case she holds or
  held, or one offered to her; never a case another counsellor holds.
- Only the counsellor who holds a case writes to her, releases, closes, writes notes, sets the
  category and referrals, or offers it to a colleague; only the colleague it is offered to
  accepts or declines.
- A supervisor is a counsellor who may also open any case (read only unless she holds it) and
  see the supervision view.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.handoff import CLAIMED, OPEN, Escalation
from bot.webdesk.data import SUPERVISOR, Transfer, handle_of


class Forbidden(Exception):
    """Not allowed for this account."""


@dataclass(frozen=True)
class Actor:
    """The signed-in person."""

    user_id: int
    name: str
    role: str

    @property
    def handle(self) -> str:
        return handle_of(self.name)

    @property
    def supervisor(self) -> bool:
        return self.role == SUPERVISOR


def holds(actor: Actor, case: Escalation) -> bool:
    return case.status == CLAIMED and case.counsellor == actor.handle


def may_open(actor: Actor, case: Escalation, offered_to_her: bool = False) -> bool:
    if actor.supervisor or case.status == OPEN or offered_to_her:
        return True
    return case.counsellor == actor.handle  # held now, or held when it ended


def may_claim(actor: Actor, case: Escalation) -> bool:
    return case.status == OPEN


def may_act(actor: Actor, case: Escalation) -> bool:
    return holds(actor, case)


def may_transfer(actor: Actor, case: Escalation, to_handle: str, active_handles: set[str]) -> bool:
    return holds(actor, case) and to_handle != actor.handle and to_handle in active_handles


def may_answer_transfer(actor: Actor, transfer: Transfer) -> bool:
    return transfer.status == "pending" and transfer.to_counsellor == actor.handle


def may_supervise(actor: Actor) -> bool:
    return actor.supervisor


def require(allowed: bool, what: str) -> None:
    if not allowed:
        raise Forbidden(what)
