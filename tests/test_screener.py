"""The deterministic risk screener: folding, rule kinds, and the per-language evaluation
set (tests/data/risk_eval/<lang>.yml, written apart from the lexicons): recall on urgent
danger must be 100% and false escalations at most 3% of benign messages."""

from __future__ import annotations

import pytest
import yaml

from benchmarks.risk import UNSEEN_DIR, load_sets
from bot.config import ROOT
from bot.risk.fold import fold, skeleton
from bot.risk.screener import Screener
from bot.text import normalize

EVAL_DIR = ROOT / "tests" / "data" / "risk_eval"
EVAL_LANGUAGES = sorted(p.stem for p in EVAL_DIR.glob("*.yml"))
MAX_FALSE_ESCALATION = 0.03
# Languages measured below the targets on their evaluation set (docs/evaluation.md "Risk screening"). Each is
# held to what it reaches today so a regression fails; the targets stay 100% recall / <= 3% false
# escalations, and a language leaves these lists when it meets them.
# measured 2026-11-23: every language meets the targets (all lexicons tuned on these sets; see docs/evaluation.md)
RECALL_BELOW_TARGET: dict[str, float] = {}
FALSE_ESCALATION_ABOVE_TARGET: dict[str, float] = {}


def eval_set(language: str) -> dict:
    return yaml.safe_load((EVAL_DIR / f"{language}.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("HEEEELP", "help"),
        ("h3lp", "help"),
        ("pаssport", "pasport"),  # Cyrillic а inside a Latin word
        ("Người ta giữ hộ chiếu", "nguoi ta giu ho chieu"),
        ("Ajutațimă", "ajutatima"),
        ("ｈｅｌｐ", "help"),  # full-width
        ("ช่วยด้วยยยย", "ช่วยด้วย"),
    ],
)
def test_fold_makes_variants_equal(typed: str, canonical: str) -> None:
    assert fold(typed) == fold(canonical)


def test_cyrillic_and_its_transliteration_share_a_skeleton() -> None:
    assert skeleton("помогите") == skeleton("pomogite")
    assert skeleton("допоможіть") == skeleton("dopomozhit")
    assert skeleton("заперли") == skeleton("zaperli")


@pytest.mark.parametrize(
    ("text", "level", "category"),
    [
        ("help", "urgent", "cry_for_help"),
        ("HEEELP!!!", "urgent", "cry_for_help"),
        ("please help me", "urgent", "cry_for_help"),
        ("🆘", "urgent", "cry_for_help"),
        ("can you help me understand my contract?", "none", None),
        ("the boss keeps our passports in his safe", "urgent", "documents_taken"),
        ("I lost my passport at the airport", "none", None),
        ("this homework is killing me lol", "none", None),
        ("my friend went to Dubai and stopped answering", "concern", "missing_contact"),
    ],
)
def test_english_rules(screener: Screener, text: str, level: str, category: str | None) -> None:
    result = screener.screen(text)
    assert (result.level, result.category) == (level, category), result


def test_zawgyi_and_invisible_characters_do_not_hide_danger(screener: Screener) -> None:
    hidden = "they took my pass\u200bport"
    assert screener.screen(normalize(hidden).text).urgent


def test_unknown_category_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        Screener({"locked_in": "urgent"}, {"en": {"categories": {"made_up": ["x"]}}})


def test_eval_sets_exist_for_every_language_with_a_lexicon() -> None:
    lexicons = {p.stem for p in (ROOT / "data" / "risk").glob("*.yml")} - {"categories", "decision"}
    assert lexicons <= set(EVAL_LANGUAGES)


@pytest.mark.parametrize("language", EVAL_LANGUAGES)
def test_eval_set_shape(language: str) -> None:
    data = eval_set(language)
    categories = yaml.safe_load((ROOT / "data" / "risk" / "categories.yml").read_text())["categories"]
    assert data["language"] == language
    assert len(data["urgent"]) >= 30 and len(data["benign"]) >= 30
    assert sum(1 for b in data["benign"] if b.get("trap")) >= 20
    assert {u["category"] for u in data["urgent"]} <= set(categories)


@pytest.mark.parametrize("language", EVAL_LANGUAGES)
def test_every_urgent_message_escalates(screener: Screener, language: str) -> None:
    urgent = eval_set(language)["urgent"]
    missed = [u["text"] for u in urgent if not screener.screen(normalize(u["text"]).text).urgent]
    floor = RECALL_BELOW_TARGET.get(language, 1.0)
    assert 1 - len(missed) / len(urgent) >= floor, missed


@pytest.mark.parametrize("language", EVAL_LANGUAGES)
def test_false_escalations_at_most_3_percent(screener: Screener, language: str) -> None:
    benign = [b["text"] for b in eval_set(language)["benign"]]
    wrong = [t for t in benign if screener.screen(normalize(t).text).urgent]
    assert len(wrong) / len(benign) <= FALSE_ESCALATION_ABOVE_TARGET.get(language, MAX_FALSE_ESCALATION), wrong


def test_lexicons_are_reviewed_like_content() -> None:
    for path in (ROOT / "data" / "risk").glob("*.yml"):
        if path.stem in ("categories", "decision"):
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["language"] == path.stem
        assert data["review"] in {"machine_drafted", "native_reviewed", "clinically_reviewed"}


def test_a_gap_allows_up_to_three_words_between() -> None:
    """ ".." must survive folding (fold squeezes repeated characters; phrases are folded word by word)."""
    screener = Screener(
        {"documents_taken": "urgent"},
        {
            "en": {"categories": {"documents_taken": ["took* .. passport"]}},
            "ru": {"categories": {"documents_taken": ["забрал* .. паспорт"]}},
        },
    )
    assert screener.screen("they took my passport").urgent
    assert screener.screen("he took my red old passport").urgent
    assert not screener.screen("he took the bus to the office to renew the passport").urgent  # 5 words between
    assert screener.screen("забрали мой паспорт").urgent


# tests/data/risk_unseen/<lang>.yml: a second set written after the lexicons were tuned and never
# used to tune them (docs/evaluation.md "Risk screening"). It is the honest estimate for unseen wording, so it
# is held only to overall floors a little under what it measured (2026-11-23: recall 0.777, false
# escalations 0.077 over 11 languages); it must not become a tuning target.
UNSEEN_RECALL_FLOOR = 0.74
UNSEEN_FALSE_ESCALATION_CEILING = 0.10


def test_unseen_set_covers_every_language_and_category() -> None:
    categories = set(yaml.safe_load((ROOT / "data" / "risk" / "categories.yml").read_text())["categories"])
    sets = load_sets(UNSEEN_DIR)
    assert set(sets) == set(EVAL_LANGUAGES)
    for language, data in sets.items():
        assert data["language"] == language
        urgent = [u["category"] for u in data["urgent"]]
        assert len(urgent) == 20 and len(set(urgent)) == 10 and set(urgent) <= categories
        assert len(data["benign"]) == 20 and sum(1 for b in data["benign"] if b.get("trap")) == 10
        assert len(data["concern"]) == 5


def test_unseen_wording_stays_above_the_measured_floor(screener: Screener) -> None:
    sets = load_sets(UNSEEN_DIR).values()
    urgent = [u["text"] for d in sets for u in d["urgent"]]
    benign = [b["text"] for d in sets for b in d["benign"]]
    recall = sum(screener.screen(normalize(t).text).urgent for t in urgent) / len(urgent)
    false = sum(screener.screen(normalize(t).text).urgent for t in benign) / len(benign)
    assert recall >= UNSEEN_RECALL_FLOOR and false <= UNSEEN_FALSE_ESCALATION_CEILING, (recall, false)


# Exclusions that would hide real danger: teenagers mask fear with laughter ("he said he'd kill me
# lol", "muốn chết quá hihi"), "he's not joking" contains "joking", and parents and relatives are
# among the people who sell, lock in and threaten children. Only whole idioms may be excluded
# ("mum will kill me", "แม่จะฆ่า"), never the bare word.
NEVER_AN_EXCLUSION = {
    "lol", "lmao", "haha", "hahaha", "hehe", "hihi", "wkwk", "wkwkwk", "awokwok", "ngakak", "555", "kkk", "jk",
    "joke", "joking", "kidding", "char", "charot", "chos", "bercanda", "canda", "glumesc", "gluma", "шучу", "жартую",
    "ล้อเล่น", "နောက်တာ", "ဟားဟား", "哈哈", "笑死", "开玩笑", "開玩笑",
    "mum", "mom", "dad", "parents", "mama", "papa", "ibu", "ayah", "tata", "nanay", "tatay", "ni mama", "ni nanay",
    "mẹ", "bố", "má", "мама", "папа", "тато", "แม่", "พ่อ", "妈妈", "爸爸", "我妈", "teacher", "ครู", "老师",
    "my friend", "my sister", "my brother", "my dad", "my mum", "my mom", "my parents", "my family", "boyfriend",
    "ortu", "orang tua", "pacar", "keluarga", "bokap", "nyokap", "nanay ko", "tatay ko", "mama ko", "papa ko",
    "bố mẹ", "ba mẹ", "พ่อแม่", "ผู้ปกครอง", "父母", "爸妈", "родители", "батьки", "părinții", "parintii",
    "မိဘ", "အမေ", "အဖေ", "ម៉ែ", "ឪពុក", "ប៉ា",
}  # fmt: skip


def _exclusions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(x) for x in node.get("unless", [])]
        return found + [x for k, v in node.items() if k != "unless" for x in _exclusions(v)]
    if isinstance(node, list):
        return [x for item in node for x in _exclusions(item)]
    return []


@pytest.mark.parametrize("language", EVAL_LANGUAGES)
def test_laughter_family_and_joking_never_silence_danger(language: str) -> None:
    lexicon = yaml.safe_load((ROOT / "data" / "risk" / f"{language}.yml").read_text(encoding="utf-8"))
    broad = sorted({x for x in _exclusions(lexicon) if x.casefold() in NEVER_AN_EXCLUSION})
    assert not broad, broad


# Short requests for a person (2026-12-07: the development sets' misses, phrased again here for the test).
@pytest.mark.parametrize(
    "text",
    [
        "позовите оператора пожалуйста",
        "дайте людину, будь ласка",
        "có người thật nào trực không",
        "ខ្ញុំចង់ឆាតជាមួយបុគ្គលិក",
        "တာဝန်ကျဝန်ထမ်းနဲ့ ပြောလို့ရလား",
        "快叫个活人来",
        "vreau sa discut cu o persoana",
        # asking whether a real person is there (2026-12-07, second session: four development-set misses, phrased
        # again here)
        "is anyone a real human here?",
        "có ai là người thật không vậy",
        "ce bot chy lyudyna ye? treba pohovoryty",
        "bot မဟုတ်တဲ့ လူအစစ် ရှိလား",
        "ខ្ញុំត្រូវការមនុស្សពិត មិនមែនម៉ាស៊ីន",
        "oper ke konselor dong kak",
    ],
)
def test_short_requests_for_a_person_open_a_request(screener: Screener, text: str) -> None:
    assert "requested" in screener.screen(normalize(text).text).categories


@pytest.mark.parametrize(
    "text",
    [
        "ធ្វើម៉េចដឹងថាអ្នកដែលឆាតជាមួយគឺជាមនុស្សពិត",  # is the man I chat with a real person? (a question about him)
        "công ty có người tuyển nhân viên phục vụ",  # a company has someone hiring waitresses (an offer)
        "бос дав мені номер оператора таксі",  # a taxi operator's number
        "có ai là người Việt ở Đài Loan không",  # is anyone here Vietnamese in Taiwan?
        "ця людина є моїм босом",  # this person is my boss
        "a real person told me the job was fake",
    ],
)
def test_person_words_in_other_sentences_are_not_a_request(screener: Screener, text: str) -> None:
    assert "requested" not in screener.screen(normalize(text).text).categories


def test_triggers_do_not_depend_on_the_process_hash_seed() -> None:
    """No-space scripts are indexed by character bigrams kept in sets of str, whose order follows
    PYTHONHASHSEED; the triggers a counsellor sees must not (2026-12-07: Thai triggers came in
    another order in another process)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from bot.config import Settings\n"
        "from bot.risk.screener import load_screener\n"
        "from bot.text import normalize\n"
        "s = load_screener(Settings().data_dir)\n"
        "print(json.dumps([list(s.screen(normalize(t).text).triggers) for t in json.loads(sys.stdin.read())]))\n"
    )
    texts = [
        "เขาขังหนูไว้ในห้อง ล็อคประตูจากข้างนอก ออกไปไหนไม่ได้",
        "น้องสาวไปทำงานต่างประเทศ ไม่ตอบไลน์เลย โทรไปก็ปิดเครื่อง",
        "老板把我关在房间里 护照也被收走了 不让我走",
        "ពួកគេចាក់សោខ្ញុំក្នុងបន្ទប់ ហើយយកលិខិតឆ្លងដែន",
    ]
    runs = []
    for seed in ("1", "2", "3", "4", "5", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, "-c", script], input=json.dumps(texts), env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert any(len(triggers) >= 3 for triggers in runs[0])  # several triggers, so their order is tested
    assert all(run == runs[0] for run in runs)
