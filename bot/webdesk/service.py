"""What the web desk does, for a signed-in person: queue, case, actions, supervision.

Every action goes through the handoff core (bot/handoff.py) and the counsellor desk
(bot/desk.py), as the terminal console and the Telegram group do: a claim is the same single
conditional UPDATE (a case claimed in Telegram is claimed here), a reply is a transcript line
plus an outbox row that her channel's gateway delivers, release and close resume her bot.
Permissions are checked first (bot/webdesk/permissions.py); human reads and every action are
audited; the live view's redraws are not reads and are not audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet

from bot.content import Catalog, Country, Organisation
from bot.desk import CounsellorDesk
from bot.evaluation import percentile
from bot.handoff import (
    ACTIVE,
    CLAIMED,
    OPEN,
    UNREADABLE,
    AlreadyClaimed,
    Escalation,
    Handoff,
    NotAllowed,
    TranscriptLine,
    escalations,
    transcript,
)
from bot.retention import ANONYMOUS
from bot.stats import report
from bot.webdesk.canned import CannedReplies, CannedReply, Taxonomy
from bot.webdesk.data import ACCEPTED, DECLINED, WITHDRAWN, DeskStore, Note, PastCase, Record, Referral, Transfer
from bot.webdesk.permissions import (
    Actor,
    Forbidden,
    holds,
    may_act,
    may_answer_transfer,
    may_claim,
    may_open,
    may_supervise,
    may_transfer,
    require,
)

MODEL_PREFIXES = ("semantic:", "nlu:", "person:", "cry:", "offer:")  # offer:<flag id> names a rule, not her words
ONLINE_SECONDS = 60.0


class NotFound(Exception):
    """No such case (or it was erased)."""


@dataclass(frozen=True)
class QueueItem:
    case: Escalation
    waiting_seconds: float
    overdue: bool
    category: str | None
    mine: bool
    offer_id: int | None  # a colleague offered this case to her

    @property
    def why(self) -> str:
        """The model's reasons and the lexicon's matches, as the risk decision recorded them."""
        return ", ".join(self.case.triggers) or "-"

    @property
    def model_why(self) -> list[str]:
        return [t for t in self.case.triggers if t.startswith(MODEL_PREFIXES)]


@dataclass(frozen=True)
class CaseView:
    case: Escalation
    lines: list[TranscriptLine]
    notes: list[Note]
    record: Record
    referrals: list[Referral]
    history: list[PastCase]
    canned: list[CannedReply]
    organisations: list[Organisation]
    referral_text: CannedReply | None  # what "send to her" sends: contacts of referrals not sent yet
    offer_out: Transfer | None  # she offered it to a colleague, not answered yet
    offer_in: Transfer | None  # offered to the person looking
    colleagues: list[str]
    can_act: bool
    can_claim: bool

    @property
    def last_line_id(self) -> int:
        return self.lines[-1].id if self.lines else 0


@dataclass(frozen=True)
class SupervisorView:
    online: dict[str, float]
    holders: dict[str, list[Escalation]]
    waiting: list[QueueItem]
    pending_transfers: list[Transfer]
    claims: int
    median_claim_seconds: float | None
    p90_claim_seconds: float | None
    escalations_by_day: list[tuple[str, int]] = field(default_factory=list)


class DeskService:
    def __init__(
        self,
        handoff: Handoff,
        desk: CounsellorDesk,
        store: DeskStore,
        cipher: MultiFernet,
        canned: CannedReplies,
        taxonomy: Taxonomy,
        catalog: Catalog,
        claim_timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.handoff, self.desk, self.store, self.cipher = handoff, desk, store, cipher
        self.canned, self.taxonomy, self.catalog = canned, taxonomy, catalog
        self.claim_timeout_seconds = claim_timeout_seconds
        self.clock = clock
        self._base_allow_list = frozenset(handoff.counsellors)

    # -- helpers ----------------------------------------------------------------------------
    def _allow_list(self) -> set[str]:
        """The handoff core's allow-list: the configured counsellors plus every enabled desk
        account (read each time: an account disabled elsewhere stops acting at once)."""
        active = self.store.active_handles()
        self.handoff.counsellors = self._base_allow_list | active
        return active

    def _case(self, escalation_id: int) -> Escalation:
        case = self.handoff.get(escalation_id)
        if case is None:
            raise NotFound(f"case {escalation_id}")
        return case

    def _country(self, case: Escalation) -> Country | None:
        return self.catalog.countries.get(case.country or self.catalog.default_country(case.language) or "")

    def _referral_text(self, case: Escalation, referrals: list[Referral]) -> tuple[CannedReply | None, list[Referral]]:
        """The vetted referral text for the referrals not sent yet whose organisation is in her
        country's facts with a contact, and those referrals."""
        country = self._country(case)
        if country is None:
            return None, []
        by_name = {o.name: o for o in country.organisations}
        pending = [r for r in referrals if r.sent_at is None and r.organisation in by_name]
        pending = [r for r in pending if country.contact_of(by_name[r.organisation])]
        text = self.canned.referral(case.language, country, [by_name[r.organisation] for r in pending])
        return text, pending

    def _seal(self, text: str) -> str:
        return self.cipher.encrypt(text.encode()).decode()

    def _open(self, sealed: str) -> str:
        try:
            return self.cipher.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return UNREADABLE

    # -- queue ------------------------------------------------------------------------------
    def queue(self, actor: Actor, audited: bool = True) -> list[QueueItem]:
        """Open and claimed cases, urgent first. ``audited=False`` for live redraws."""
        self._allow_list()
        cases = self.handoff.queue(actor.handle, audit=audited)
        categories = self.store.categories([c.id for c in cases])
        offers = {t.escalation_id: t.id for t in self.store.pending_transfers(to_counsellor=actor.handle)}
        now = self.clock()
        return [
            QueueItem(
                case=c,
                waiting_seconds=now - (c.claimed_at if c.status == CLAIMED and c.claimed_at else c.created_at),
                overdue=c.status == OPEN and now - c.created_at >= self.claim_timeout_seconds,
                category=categories.get(c.id),
                mine=holds(actor, c),
                offer_id=offers.get(c.id),
            )
            for c in cases
        ]

    def live_signature(self) -> tuple[object, ...]:
        """Changes whenever anything a live view shows changes (one cheap query set per tick)."""
        with self.handoff.engine.connect() as conn:
            active = conn.execute(
                sa.select(escalations.c.id, escalations.c.status, escalations.c.counsellor, escalations.c.risk_level).where(
                    escalations.c.status.in_(ACTIVE)
                )
            ).all()
            last_line = conn.execute(sa.select(sa.func.coalesce(sa.func.max(transcript.c.id), 0))).scalar_one()
        return (tuple(sorted(tuple(r) for r in active)), int(last_line), self.store.transfers_signature())

    # -- one case ---------------------------------------------------------------------------
    def open_case(self, actor: Actor, escalation_id: int) -> CaseView:
        """A person opens a case: transcript, notes and history are read (audited)."""
        active = self._allow_list()
        case = self._case(escalation_id)
        offer_in = next(iter(self.store.pending_transfers(to_counsellor=actor.handle, escalation_id=case.id)), None)
        if not may_open(actor, case, offered_to_her=offer_in is not None):
            self.store.audit(actor.handle, "refused_open", case.id)
            raise Forbidden("this case is held by another counsellor")
        lines = self.handoff.read_transcript(actor.handle, case.id, audit="always")
        notes = [Note(n.id, n.at, n.author, self._open(n.text)) for n in self.store.notes(case.id)]
        if notes:
            self.store.audit(actor.handle, "read_notes", case.id)
        history = self.store.history(case.user_key, case.id) if case.user_key != ANONYMOUS else []
        if history:
            self.store.audit(actor.handle, "read_history", case.id)
        offers_out = [t for t in self.store.pending_transfers(escalation_id=case.id) if t.from_counsellor == case.counsellor]
        country = self._country(case)
        referrals = self.store.referrals([case.id]).get(case.id, [])
        return CaseView(
            case=case,
            lines=lines,
            notes=notes,
            record=self.store.record(case.id),
            referrals=referrals,
            history=history,
            canned=self.canned.for_case(case.language, case.country, case.channel),
            organisations=list(country.organisations) if country else [],
            referral_text=self._referral_text(case, referrals)[0],
            offer_out=offers_out[0] if offers_out else None,
            offer_in=offer_in,
            colleagues=sorted(h for h in active if h != actor.handle),
            can_act=may_act(actor, case),
            can_claim=may_claim(actor, case),
        )

    def new_lines(self, actor: Actor, escalation_id: int, after_id: int) -> tuple[Escalation, list[TranscriptLine]]:
        """For the live view of a case already opened: new lines (not a new read, not audited)."""
        self._allow_list()
        case = self._case(escalation_id)
        if not may_open(actor, case, offered_to_her=bool(self.store.pending_transfers(actor.handle, case.id))):
            raise Forbidden("this case is held by another counsellor")
        return case, self.handoff.read_transcript(actor.handle, case.id, after_id, audit="never")

    # -- actions ----------------------------------------------------------------------------
    def claim(self, actor: Actor, escalation_id: int) -> Escalation:
        self._allow_list()
        return self.desk.claim(actor.handle, escalation_id)  # AlreadyClaimed if someone else won

    def send(self, actor: Actor, escalation_id: int, text: str) -> int:
        self._allow_list()
        require(may_act(actor, self._case(escalation_id)), "only the counsellor who holds the case writes to her")
        return self.desk.send(actor.handle, escalation_id, text)

    async def release(self, actor: Actor, escalation_id: int) -> Escalation:
        self._allow_list()
        require(may_act(actor, self._case(escalation_id)), "only the counsellor who holds the case releases it")
        self.store.withdraw_transfers(escalation_id)
        return await self.desk.release(actor.handle, escalation_id)

    async def close(self, actor: Actor, escalation_id: int, outcome: str) -> Escalation:
        self._allow_list()
        if outcome not in self.taxonomy.outcome_codes():
            raise ValueError("choose an outcome from the list")
        require(may_act(actor, self._case(escalation_id)), "only the counsellor who holds the case closes it")
        self.store.withdraw_transfers(escalation_id)
        return await self.desk.close(actor.handle, escalation_id, outcome)

    def add_note(self, actor: Actor, escalation_id: int, text: str) -> int:
        text = text.strip()
        if not text:
            raise ValueError("empty note")
        case = self._case(escalation_id)
        require(may_act(actor, case) or actor.supervisor, "only the counsellor who holds the case writes notes")
        note = self.store.add_note(case.id, actor.handle, self._seal(text[:4000]))
        self.store.audit(actor.handle, "note", case.id)
        return note

    def set_category(self, actor: Actor, escalation_id: int, category: str) -> None:
        if category not in self.taxonomy.category_codes():
            raise ValueError("choose a category from the list")
        case = self._case(escalation_id)
        require(may_act(actor, case), "only the counsellor who holds the case sets its category")
        self.store.update_record(case.id, actor.handle, category=category)
        self.store.audit(actor.handle, "category", case.id)

    def set_referrals(self, actor: Actor, escalation_id: int, names: list[str]) -> None:
        case = self._case(escalation_id)
        require(may_act(actor, case), "only the counsellor who holds the case records referrals")
        country = self._country(case)
        known = {o.name for o in country.organisations} if country else set()
        chosen = [n for n in names if n in known]  # only organisations of her country's sourced facts
        self.store.set_referrals(case.id, country.code if country else None, actor.handle, chosen)
        self.store.audit(actor.handle, "referrals", case.id)

    def send_referrals(self, actor: Actor, escalation_id: int) -> int:
        """Send her, through the outbox, the vetted referral text with the contacts (from the
        facts) of the organisations she was referred to and has not been sent yet."""
        self._allow_list()
        case = self._case(escalation_id)
        require(may_act(actor, case), "only the counsellor who holds the case writes to her")
        text, pending = self._referral_text(case, self.store.referrals([case.id]).get(case.id, []))
        if text is None:
            raise ValueError("empty: no referral with a contact to send")
        line = self.desk.send(actor.handle, case.id, text.text)
        self.store.mark_referrals_sent([r.id for r in pending])
        self.store.audit(actor.handle, "referrals_sent", case.id)
        return line

    def offer_transfer(self, actor: Actor, escalation_id: int, to_handle: str) -> int:
        active = self._allow_list()
        case = self._case(escalation_id)
        require(may_transfer(actor, case, to_handle, active), "offer a case you hold to an enabled colleague")
        offer = self.store.offer_transfer(case.id, actor.handle, to_handle)
        self.store.audit(actor.handle, "transfer_offer", case.id)
        return offer

    def answer_transfer(self, actor: Actor, transfer_id: int, accept: bool) -> Escalation:
        self._allow_list()
        offer = self.store.transfer(transfer_id)
        if offer is None:
            raise NotFound(f"transfer {transfer_id}")
        require(may_answer_transfer(actor, offer), "this offer is not yours to answer")
        if not accept:
            self.store.decide_transfer(offer.id, DECLINED)
            self.store.audit(actor.handle, "transfer_decline", offer.escalation_id)
            return self._case(offer.escalation_id)
        try:  # the move first: it fails if the colleague no longer holds the case
            case = self.handoff.transfer(offer.from_counsellor, offer.escalation_id, actor.handle)
        except (AlreadyClaimed, NotAllowed):
            self.store.decide_transfer(offer.id, WITHDRAWN)
            raise Forbidden("the colleague who offered it no longer holds this case") from None
        self.store.decide_transfer(offer.id, ACCEPTED)
        self.store.audit(actor.handle, "transfer_accept", offer.escalation_id)
        return case

    # -- supervision ------------------------------------------------------------------------
    def supervision(self, actor: Actor) -> SupervisorView:
        require(may_supervise(actor), "supervisors only")
        items = self.queue(actor, audited=False)
        self.store.audit(actor.handle, "view_supervision")
        holders: dict[str, list[Escalation]] = {}
        for item in items:
            if item.case.status == CLAIMED and item.case.counsellor:
                holders.setdefault(item.case.counsellor, []).append(item.case)
        stats = report(self.handoff.engine, days=7, now=self.clock())
        waits = stats.claim_seconds
        today = stats.days[-1]
        return SupervisorView(
            online=self.store.online(ONLINE_SECONDS),
            holders=dict(sorted(holders.items())),
            waiting=[i for i in items if i.case.status == OPEN],
            pending_transfers=self.store.pending_transfers(),
            claims=len(waits),
            median_claim_seconds=percentile(waits, 50) if waits else None,
            p90_claim_seconds=percentile(waits, 90) if waits else None,
            escalations_by_day=[(day, stats.escalations.get(day, 0)) for day in stats.days if day <= today],
        )

    def stats_png(self, actor: Actor, days: int = 30) -> bytes:
        """The anonymous statistics chart (`python -m bot stats --png`), for supervisors."""
        import tempfile
        from pathlib import Path

        from bot.stats import write_png

        require(may_supervise(actor), "supervisors only")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "stats.png"
            write_png(report(self.handoff.engine, days=days, now=self.clock()), path)
            return path.read_bytes()
