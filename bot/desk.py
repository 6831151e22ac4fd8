"""What counsellors do, for every counsellor interface (terminal console, Telegram group).

Wraps the handoff core with what each action means for her: a claim tells her a person
is here; release and close resume her Rasa conversation and tell her so, in her language.
Also the supervision tick that every channel process runs: honest timeout notices.
"""

from __future__ import annotations

import logging

from bot.content import Catalog
from bot.content.render import Renderer
from bot.handoff import Escalation, Handoff
from bot.rasa_client import RasaClient, RasaUnavailable

log = logging.getLogger(__name__)


class CounsellorDesk:
    """Counsellor actions with their effect on the user's side."""

    def __init__(self, handoff: Handoff, catalog: Catalog, rasa: RasaClient | None) -> None:
        self.handoff = handoff
        self.catalog = catalog
        self.render = Renderer(catalog)
        self.rasa = rasa

    def _tell(self, escalation: Escalation, key: str) -> None:
        self.handoff.notify_user(escalation, self.render.t(key, self.catalog.language(escalation.language)))

    def claim(self, counsellor: str, escalation_id: int) -> Escalation:
        escalation = self.handoff.claim(counsellor, escalation_id)
        self._tell(escalation, "handoff_started")
        return escalation

    def send(self, counsellor: str, escalation_id: int, text: str) -> int:
        return self.handoff.send(counsellor, escalation_id, text)

    async def release(self, counsellor: str, escalation_id: int) -> Escalation:
        escalation = self.handoff.release(counsellor, escalation_id)
        self._tell(escalation, "handoff_released")
        await self._resume(escalation)
        return escalation

    async def close(self, counsellor: str, escalation_id: int, outcome: str) -> Escalation:
        escalation = self.handoff.close(counsellor, escalation_id, outcome)
        self._tell(escalation, "handoff_closed")
        await self._resume(escalation)
        return escalation

    async def _resume(self, escalation: Escalation) -> None:
        if self.rasa is None:
            return
        try:
            await self.rasa.set_paused(escalation.user_key, False)
            self.handoff.mark_paused(escalation.id, False)
        except RasaUnavailable as error:  # the pipeline resumes on her next message
            log.error("could not resume rasa for escalation %s (%s)", escalation.id, error)


def notify_overdue(handoff: Handoff, catalog: Catalog, timeout_seconds: float) -> list[int]:
    """Tell every user whose escalation nobody claimed in time, honestly, with numbers. Idempotent."""
    render = Renderer(catalog)
    told = []
    for escalation in handoff.overdue(timeout_seconds):
        if not handoff.mark_timeout_notice(escalation.id):
            continue  # another process told her
        language = catalog.language(escalation.language)
        code = escalation.country or catalog.default_country(language)
        country = catalog.countries.get(code or "")
        numbers = render.hotlines(country, language) if country else render.emergency_numbers_everywhere(language)
        handoff.notify_user(escalation, render.t("escalation_timeout", language) + "\n" + numbers)
        log.warning("escalation id=%s not claimed in time; user told", escalation.id)
        told.append(escalation.id)
    return told
