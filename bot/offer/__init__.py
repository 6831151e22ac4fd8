"""The offer analyser (issue 16): facts and red flags of a job offer she describes. Pure code, no Rasa.

    from bot.offer import analyse
    report = analyse("a woman on facebook offers me a job in Bangkok, 20000 baht a month. I am 16", "en", "TH")
    report.flags        # ("stranger_recruiter", "minor_recruited")
    report.facts.age    # 16

See docs/offer-check.md.
"""

from bot.offer.analyser import Analyser, analyse, load_analyser, merge_flags
from bot.offer.model import FLAG_IDS, SEVERITIES, Amount, Finding, OfferFacts, OfferReport

__all__ = [
    "FLAG_IDS",
    "SEVERITIES",
    "Amount",
    "Analyser",
    "Finding",
    "OfferFacts",
    "OfferReport",
    "analyse",
    "load_analyser",
    "merge_flags",
]
