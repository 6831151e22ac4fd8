"""Turns an intent + language + country into the bot's messages (no Rasa imports)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.content.catalog import FALLBACK_LANGUAGE, Catalog, Country, Hotline

MAX_HOTLINES = 5
SMS_MAX_HOTLINES = 3  # an SMS answer stays within a few segments; emergency numbers come first
MAX_ORGANISATIONS = 3
# Topics whose answer depends on the user's country.
COUNTRY_INTENTS = frozenset(
    {"warning_signs", "legal_rights", "legal_aid", "life_skills", "safe_migration", "get_help", "danger"}
)
MENU = (
    ("button_job_offer", "/job_offer"),
    ("button_tactics", "/recruitment_tactics"),
    ("button_warning_signs", "/warning_signs"),
    ("button_rights", "/legal_rights"),
    ("button_programmes", "/life_skills"),
    ("button_get_help", "/get_help"),
)
SIMPLE_ANSWERS = {
    "goodbye": ("goodbye",),
    "thanks": ("thanks",),
    "bot_identity": ("bot_identity",),
    "privacy": ("privacy",),
    "recruitment_tactics": ("recruitment_tactics",),
    # if she already sent photos: not her fault, help exists, sharing them is a crime
    "online_relationship": ("online_relationship", "photos_not_your_fault"),
    "marriage_offer": ("marriage_offer",),
    "modelling_offer": ("modelling_offer",),
}
LEGAL_AID_SERVICES = frozenset({"legal_aid"})
RETENTION_KEYS = frozenset({"privacy"})  # texts that state how long her messages are kept
SUPPORT_SERVICES = frozenset({"vocational_training", "education", "life_skills", "reintegration", "shelter"})
OFFER_SEVERITIES = ("info", "concerning", "urgent")  # the offer analyser's (bot/offer/model.py)
# Job-offer check: slot -> the answer that is a red flag.
JOB_CHECK_FLAGS = {
    "job_fee": True,
    "job_passport": True,
    "job_contract": False,
    "job_licensed": False,
    "job_visa": True,
    "job_too_good": True,
}


@dataclass(frozen=True)
class Message:
    """One bot message; buttons are (title, payload) pairs."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()


def country_payload(code: str) -> str:
    return "/inform_country" + json.dumps({"country": code})


class Renderer:
    """Renders answers from the catalog."""

    def __init__(self, catalog: Catalog, variant: str | None = None, retention_days: float | None = None) -> None:
        self.catalog = catalog
        self.variant = variant  # "sms": short renderings and fewer hotlines
        self.max_hotlines = SMS_MAX_HOTLINES if variant == "sms" else MAX_HOTLINES
        if retention_days is None:  # the configured value (SP_RETENTION_DAYS), as the retention job uses it
            from bot.config import Settings

            retention_days = Settings().retention_days
        self.retention_days = f"{retention_days:g}"

    def t(self, key: str, language: str, **values: object) -> str:
        if key in RETENTION_KEYS:  # what the privacy notice promises is what retention does
            values.setdefault("retention_days", self.retention_days)
        return self.catalog.text(key, language, self.variant, **values)

    # --- building blocks -------------------------------------------------------
    def menu_buttons(self, language: str) -> tuple[tuple[str, str], ...]:
        return tuple((self.t(key, language), payload) for key, payload in MENU)

    def yes_no_buttons(self, language: str) -> tuple[tuple[str, str], ...]:
        return ((self.t("button_yes", language), "/affirm"), (self.t("button_no", language), "/deny"))

    def country_buttons(self, language: str) -> tuple[tuple[str, str], ...]:
        return tuple((country.name(language), country_payload(code)) for code, country in self.catalog.countries.items())

    def hotline_line(self, hotline: Hotline, country: Country, language: str) -> str:
        label = self.t(f"kind_{hotline.kinds[0]}", language)
        star = "*" if hotline.confidence == "low" else ""
        if self.variant == "sms":  # every character costs: the kind and the number
            return f"{label}: {hotline.number}{star}"
        local = self.catalog.default_country(language) == country.code
        name = hotline.name_local if (local and hotline.name_local) else hotline.name
        extras = []
        if hotline.hours == "24/7":
            extras.append(self.t("hotline_24_7", language))
        if hotline.free:
            extras.append(self.t("hotline_free", language))
        if language == FALLBACK_LANGUAGE and hotline.note:
            extras.append(hotline.note)
        suffix = f" ({', '.join(extras)})" if extras else ""
        return f"• {label}: {hotline.number}{star} - {name}{suffix}"

    def hotlines(self, country: Country, language: str, emergency_only: bool = False, every: bool = False) -> str:
        shown = country.shown_hotlines(language)
        if emergency_only:
            shown = country.emergency_hotlines(language) or shown[:1]
        if not (every and self.variant != "sms") and len(shown) > self.max_hotlines:
            shown = self._varied(shown) if not emergency_only else shown[: self.max_hotlines]
        lines = [self.hotline_line(h, country, language) for h in shown]
        if any(h.confidence == "low" for h in shown):
            lines.append(self.t("note_unconfirmed", language))
        return "\n".join(lines)

    def urgent_contacts(self, country: Country, language: str) -> str:
        """Her urgent reply's contacts: every line the facts confirm for her country, each named
        for what it is (a fire service is not "Emergency"); where no police or emergency line is
        confirmed, that is said plainly and the counsellor here is named as her contact; and the
        country's caution about state services, where the facts hold one."""
        name = country.name(language)
        parts = []
        if country.emergency_hotlines(language):
            parts.append(self.t("emergency_first", language))
        else:
            parts.append(self.t("no_confirmed_emergency", language, country=name))
        listed = self.hotlines(country, language, every=True)
        if listed:
            parts.append(listed)
        if country.caution_key:
            parts.append(self.t(country.caution_key, language, country=name))
        return "\n".join(parts)

    def _varied(self, shown: list[Hotline]) -> list[Hotline]:
        """A short list keeps one line of each kind that matters before a second of any: the first
        emergency line, a child helpline (a girl under 18 always gets one), an anti-trafficking
        line; then the rest in order. Shown in the original order."""
        picked: list[Hotline] = []
        for wanted in (("emergency", "police"), ("child",), ("anti_trafficking",)):
            line = next((h for h in shown if set(wanted) & set(h.kinds) and h not in picked), None)
            if line is not None:
                picked.append(line)
        picked += [h for h in shown if h not in picked]
        chosen = set(map(id, picked[: self.max_hotlines]))
        return [h for h in shown if id(h) in chosen]

    def helplines(self, country: Country, language: str) -> Message:
        intro = self.t("get_help_intro", language, country=country.name(language))
        return Message(intro + "\n" + self.hotlines(country, language))

    def emergency_numbers_everywhere(self, language: str) -> str:
        parts = []
        for country in self.catalog.countries.values():
            emergency = country.emergency_hotlines(language)
            if emergency:
                parts.append(f"{country.name(language)} {emergency[0].number}")
        return self.t("emergency_all_countries", language, numbers="; ".join(parts))

    def safety_net(self, language: str, country_code: str | None) -> str:
        """A line for replies that did not understand her: danger in words the screener and the NLU
        missed still gets a way to a counsellor (the help word escalates) and an emergency number."""
        country = self.catalog.countries.get(country_code or self.catalog.default_country(language) or "")
        if country is None:
            return ""
        emergency = country.emergency_hotlines(language)
        if not emergency:  # no confirmed number (Myanmar): the help word, and the counsellor here
            return "\n" + self.t("safety_net_no_number", language)
        return "\n" + self.t("safety_net", language, number=emergency[0].number)

    def organisations(self, country: Country, services: frozenset[str], language: str) -> list[str]:
        """Organisations she can contact (one without a contact is not shown), confirmed first;
        low confidence marked *."""
        orgs = country.reachable_organisations(services)[:MAX_ORGANISATIONS]
        lines = [f"• {o.name}{'*' if o.confidence == 'low' else ''} - {country.contact_of(o)}" for o in orgs]
        if any(o.confidence == "low" for o in orgs):
            lines.append(self.t("note_unconfirmed", language))
        return lines

    def legal_aid_key(self, language: str, country: Country | None) -> str:
        """The legal-aid advice: it sends her to the police, except where the facts advise caution
        about the police for her (Myanmar; a foreign girl in Thailand) - then the embassy, a
        legal-aid organisation and the counsellor here."""
        if country is not None and country.cautions_against_police(self.catalog.default_country(language)):
            return "legal_aid_general_cautious"
        return "legal_aid_general"

    # --- answers -----------------------------------------------------------------
    def greet(self, language: str) -> list[Message]:
        return [Message(self.t("greet", language), self.menu_buttons(language))]

    def answer(self, intent: str, language: str, country_code: str | None) -> list[Message]:
        """The full answer for ``intent``; country-specific parts use ``country_code``,
        or the language's default country (with a note), or ask for the country."""
        if intent == "greet":
            return self.greet(language)
        if intent in SIMPLE_ANSWERS:
            return [Message(self.t(key, language)) for key in SIMPLE_ANSWERS[intent]]
        if intent == "job_offer":
            return [
                Message(self.t("job_offer", language)),
                Message(self.t("job_check_offer", language), self.yes_no_buttons(language)),
            ]
        if intent in ("affirm", "deny", "stop", "inform_country"):
            return [Message(self.t("menu_prompt", language), self.menu_buttons(language))]
        if intent in ("out_of_scope", "nlu_fallback"):
            return [Message(self.t(intent, language) + self.safety_net(language, country_code), self.menu_buttons(language))]
        if intent not in COUNTRY_INTENTS:
            text = self.t("nlu_fallback", language) + self.safety_net(language, country_code)
            return [Message(text, self.menu_buttons(language))]
        code = country_code or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        messages = self.general_part(intent, language, country)
        if country is None:
            if intent in ("danger", "get_help"):
                messages.append(Message(self.emergency_numbers_everywhere(language)))
            messages.append(Message(self.t("ask_country", language), self.country_buttons(language)))
            return messages
        messages += self.country_part(intent, language, country)
        if not country_code:
            messages.append(
                Message(
                    self.t("country_guess_note", language, country=country.name(language)),
                    ((self.t("button_other_country", language), "/inform_country"),),
                )
            )
        return messages

    def general_part(self, intent: str, language: str, country: Country | None = None) -> list[Message]:
        keys = {
            "danger": ["danger"],
            "warning_signs": ["warning_signs", "warning_signs_what_to_do"],
            "legal_rights": ["legal_rights_general"],
            "legal_aid": [self.legal_aid_key(language, country)],
            "life_skills": ["life_skills"],
            "safe_migration": ["safe_migration"],
            "get_help": [],
        }[intent]
        return [Message(self.t(key, language)) for key in keys]

    def country_part(self, intent: str, language: str, country: Country) -> list[Message]:
        name = country.name(language)
        if intent == "danger":
            return [Message(self.urgent_contacts(country, language))]
        if intent in ("get_help", "warning_signs"):
            return [self.helplines(country, language)]
        if intent == "legal_rights":
            return [Message(self.legal_rights(country, language))]
        if intent == "legal_aid":
            orgs = self.organisations(country, LEGAL_AID_SERVICES, language)
            head = self.t("orgs_legal_intro" if orgs else "orgs_none", language, country=name)
            return [
                Message("\n".join([head, *orgs])),
                self.helplines(country, language),
            ]
        if intent == "life_skills":
            orgs = self.organisations(country, SUPPORT_SERVICES, language)
            head = self.t("orgs_support_intro" if orgs else "orgs_none", language, country=name)
            return [Message("\n".join([head, *orgs]))]
        if intent == "safe_migration":
            rule = country.fee_rule
            lines = [self.t(f"fees_{rule}", language, country=name)]
            if country.regulator:
                lines.append(self.t("regulator_line", language, regulator=country.regulator))
            return [Message("\n".join(lines))]
        raise ValueError(f"no country part for {intent}")

    def legal_rights(self, country: Country, language: str) -> str:
        name = country.name(language)
        lines = []
        if country.law_title:
            lines.append(self.t("legal_rights_country", language, country=name, law=country.law_title))
        if country.rights:
            lines.append(self.t("legal_rights_heading", language))
            lines += [self.t(f"right_{code}", language) for code in dict.fromkeys(country.rights)]
        if country.unconfirmed:
            lines.append(self.t("legal_rights_unconfirmed", language))
        if country.caution:  # the facts hold the sourced English; content the translation, per country
            lines.append(self.t(f"law_caution_{country.code}", language))
        return "\n".join(lines)

    # --- country and job check ------------------------------------------------
    def country_set(self, code: str, language: str) -> list[Message]:
        country = self.catalog.countries[code]
        return [Message(self.t("country_set", language, country=country.name(language)))]

    def country_unknown(self, language: str) -> list[Message]:
        names = ", ".join(c.name(language) for c in self.catalog.countries.values())
        return [Message(self.t("country_not_supported", language, countries=names), self.country_buttons(language))]

    def ask_country(self, language: str) -> list[Message]:
        return [Message(self.t("ask_country", language), self.country_buttons(language))]

    def offer_findings(self, flags: Sequence[str], language: str, severities: Mapping[str, str] | None = None) -> str:
        """The offer analyser's red flags in her language (issue 16). Each flag: its name and severity, why it is a
        warning sign, and what to do. On SMS one line, ';'-joined names (her segment budget)."""
        heading = self.t("offer_findings", language, count=len(flags))
        names = [self.t("offer_flag_" + flag, language) for flag in flags]
        if self.variant == "sms":
            return f"{heading} " + "; ".join(names)
        lines = [heading]
        for flag, name in zip(flags, names, strict=True):
            severity = (severities or {}).get(flag)
            label = f" ({self.t('offer_severity_' + severity, language)})" if severity in OFFER_SEVERITIES else ""
            lines.append(f"• {name}{label}")
            lines.append(f"  {self.t('offer_why_' + flag, language)}")
            lines.append(f"  → {self.t('offer_todo_' + flag, language)}")
        return "\n".join(lines)

    def child_helplines(self, language: str, country_code: str | None) -> str:
        """Under 18 (issue 16): short child-specific advice, then her country's child helpline from the sourced
        facts; where the facts confirm none, that is said, with the lines that do exist and the counsellor here."""
        lines = [self.t("offer_minor_advice", language)]
        code = country_code or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country is None:
            lines.append(self.t("offer_minor_which_country", language))
            return "\n".join(lines)
        name = country.name(language)
        shown = country.shown_hotlines(language)
        child = [h for h in shown if "child" in h.kinds]
        if child:
            lines.append(self.t("offer_minor_helpline", language, country=name))
            picked = child[: 1 if self.variant == "sms" else 2]
        else:
            lines.append(self.t("offer_minor_no_helpline", language, country=name))
            picked = [h for h in shown if set(h.kinds) & {"anti_trafficking", "women", "social"}][:2]
        lines += [self.hotline_line(h, country, language) for h in picked]
        if any(h.confidence == "low" for h in picked):
            lines.append(self.t("note_unconfirmed", language))
        return "\n".join(lines)

    def offer_messages(
        self,
        flags: Sequence[str],
        language: str,
        country_code: str | None,
        severities: Mapping[str, str] | None = None,
        under_18: bool = False,
    ) -> list[Message]:
        """What she gets after an offer (typed or read from a picture): the findings, and when she is under 18 the
        child advice and helpline. Empty when there is nothing to say."""
        messages = [Message(self.offer_findings(flags, language, severities))] if flags else []
        if under_18:
            messages.append(Message(self.child_helplines(language, country_code)))
        return messages

    def job_check_question(self, slot: str, language: str) -> Message:
        return Message(self.t("job_check_q_" + slot.removeprefix("job_"), language), self.yes_no_buttons(language))

    def job_check_result(
        self,
        answers: dict[str, bool | None],
        language: str,
        country_code: str | None,
        others: Sequence[str] = (),
        under_18: bool = False,
    ) -> list[Message]:
        """The end of the yes/no check: the red flags of her answers, the analyser's other flags found in what she
        said (``others``: stranger, travel paid, under 18 ...), what to do, child advice when she is under 18, the
        helplines, and last where her country verifies agencies or offers (sourced facts)."""
        flags = [slot for slot, bad in JOB_CHECK_FLAGS.items() if answers.get(slot) is bad]
        if flags:
            lines = [self.t("job_check_result_flags", language)]
            lines += [self.t("flag_" + slot.removeprefix("job_"), language) for slot in flags]
            first = Message("\n".join(lines))
        else:
            first = Message(self.t("job_check_result_clean", language))
        messages = [first]
        if others:
            if self.variant == "sms":
                names = "; ".join(self.t("offer_flag_" + f, language) for f in others)
                also = [self.t("job_check_result_also", language) + " " + names]
            else:
                also = [self.t("job_check_result_also", language)]
                also += [f"• {self.t('offer_flag_' + f, language)}: {self.t('offer_why_' + f, language)}" for f in others]
            messages.append(Message("\n".join(also)))
        messages.append(Message(self.t("job_check_advice", language)))
        if under_18:
            messages.append(Message(self.child_helplines(language, country_code)))
        code = country_code or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country is not None:
            messages.append(self.helplines(country, language))
        messages.append(self.verification(language, country_code))
        return messages

    def verification(self, language: str, country_code: str | None) -> Message:
        """Who verifies agencies or job offers in her country, from the sourced facts (its number where the facts
        name one); where the facts hold none, that is said, with the counsellor here and the lines that exist."""
        code = country_code or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country is None:
            return Message(self.t("verify_which_country", language))
        name = country.name(language)
        shown = country.shown_hotlines(language)
        check = country.verification
        if check is None:
            lines = [self.t("verify_none", language, country=name)]
            kinds = {"anti_trafficking", "migrant_workers", "women", "social"}
            picked = [h for h in shown if set(h.kinds) & kinds][: 1 if self.variant == "sms" else 2]
        else:
            lines = [self.t("verify_intro", language, country=name), self.t(check.content_key, language)]
            picked = [h for h in shown if h.number == check.hotline]
        lines += [self.hotline_line(h, country, language) for h in picked]
        if any(h.confidence == "low" for h in picked):
            lines.append(self.t("note_unconfirmed", language))
        if check is not None and country.caution_key:  # state services: the facts' caution (Myanmar)
            lines.append(self.t(country.caution_key, language, country=name))
        return Message("\n".join(lines))
