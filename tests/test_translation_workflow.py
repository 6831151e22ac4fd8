"""The translation workflow (content issue): texts out to gettext PO files for volunteer translators
and back, with the review status, placeholders and SMS limit kept. Every test works on a copy of
the content directory; data/content is only read."""

from __future__ import annotations

import datetime
import io
import shutil
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po, write_po

from bot.cli import main
from bot.config import ROOT
from bot.content import po
from bot.sms import segments
from tests.conftest import LANGUAGES

CONTENT = ROOT / "data" / "content"
TRANSLATED = [code for code in LANGUAGES if code != "en"]
DAY = datetime.date(2026, 5, 4)


@pytest.fixture()
def content_dir(tmp_path: Path) -> Path:
    """A copy of data/content (and data/languages.yml beside it)."""
    target = tmp_path / "data" / "content"
    shutil.copytree(CONTENT, target)
    shutil.copy(ROOT / "data" / "languages.yml", tmp_path / "data" / "languages.yml")
    return target


def _export(content_dir: Path, language: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{language}.po"
    path.write_bytes(po.export_po(content_dir, language))
    return path


def _edit(path: Path, changes: dict[str, tuple[str | None, bool]]) -> None:
    """What a reviewer does in Poedit or Weblate: context -> (new translation or None = keep, fuzzy)."""
    with path.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if message.context in changes:
            text, fuzzy = changes[message.context]
            if text is not None:
                message.string = text
            message.flags.discard("fuzzy")
            if fuzzy:
                message.flags.add("fuzzy")
    buffer = io.BytesIO()
    write_po(buffer, catalog)
    path.write_bytes(buffer.getvalue())


def _texts(content_dir: Path, language: str) -> dict:
    return yaml.safe_load((content_dir / f"{language}.yml").read_text(encoding="utf-8"))["texts"]


def _changed_lines(before: str, after: str) -> int:
    import difflib

    return sum(1 for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-")


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_language_exports_every_key_with_english_source_and_fuzzy_flags(language: str) -> None:
    english, texts = _texts(CONTENT, "en"), _texts(CONTENT, language)
    catalog = read_po(io.BytesIO(po.export_po(CONTENT, language)))
    assert str(catalog.locale_identifier) == language
    messages = {str(m.context): m for m in catalog if m.id}
    expected = [k + suffix for k, e in english.items() for suffix, v in (("", "text"), (".sms", "sms")) if v in e]
    assert list(messages) == expected, "every key, text then SMS, in en.yml order"
    for context, message in messages.items():
        key, _, sms = context.partition(".")
        variant = "sms" if sms else "text"
        assert message.id == english[key][variant]
        assert message.string == texts[key][variant], context
        assert message.fuzzy == (texts[key]["review"] == "machine_translated"), context
        comment = " ".join(message.auto_comments)
        assert comment.startswith(f"{context}: "), "the comment names the key and its purpose"
        for name in po.placeholders(str(message.id)):
            assert f"{{{name}}} = " in comment, (context, name)
        if sms:
            assert f"at most {po.SMS_MAX_SEGMENTS} SMS" in comment and "201" in comment and "459" in comment


def test_the_template_has_every_english_text_and_no_translation() -> None:
    catalog = read_po(io.BytesIO(po.export_template(CONTENT)))
    english = _texts(CONTENT, "en")
    messages = [m for m in catalog if m.id]
    assert len(messages) == len(english) + sum("sms" in e for e in english.values())
    assert all(not m.string and not m.fuzzy for m in messages)


def test_committed_review_sheet_is_current() -> None:
    """translations/*.po is what a reviewer opens: it must match data/content today."""
    stale = po.stale_files(CONTENT, ROOT / "translations")
    assert not stale, f"translations/ is stale ({', '.join(stale)}): run `python -m bot content export` (make translations)"


@pytest.mark.parametrize("language", TRANSLATED)
def test_round_trip_without_changes_leaves_the_yaml_byte_identical(content_dir: Path, tmp_path: Path, language: str) -> None:
    before = (content_dir / f"{language}.yml").read_bytes()
    result = po.import_po(content_dir, _export(content_dir, language, tmp_path), "Nobody", DAY)
    assert (result.changed, result.reviewed, result.unreviewed, result.written) == ([], [], [], False)
    assert (content_dir / f"{language}.yml").read_bytes() == before


def test_a_reviewers_po_marks_texts_native_reviewed_with_the_reviewer(content_dir: Path, tmp_path: Path) -> None:
    before_text = (content_dir / "th.yml").read_text(encoding="utf-8")
    old = _texts(content_dir, "th")
    path = _export(content_dir, "th", tmp_path)
    corrected = "สวัสดีค่ะ ฉันคือ Safe Passage ช่วยเช็คข้อเสนองานหรือการเดินทางได้ค่ะ"
    _edit(
        path,
        {
            "greet": (None, False),  # confirmed as it is
            "greet.sms": (corrected, False),  # corrected
            "thanks": (None, False),  # confirmed, no SMS rendering
            "goodbye": ("ดูแลตัวเองนะคะ", True),  # a draft, still fuzzy
            "privacy": (None, False),  # text confirmed but its SMS rendering still fuzzy
        },
    )
    result = po.import_po(content_dir, path, "Ploy S.", DAY)
    texts = _texts(content_dir, "th")
    assert result.written and sorted(result.reviewed) == ["greet", "thanks"]
    assert sorted(result.changed) == ["goodbye", "greet"]
    for key in ("greet", "thanks"):
        assert texts[key]["review"] == "native_reviewed"
        assert texts[key]["reviewed_by"] == "Ploy S., 2026-05-04"
    assert texts["greet"]["sms"] == corrected and texts["greet"]["text"] == old["greet"]["text"]
    assert texts["goodbye"] == {"text": "ดูแลตัวเองนะคะ", "review": "machine_translated"}
    assert texts["privacy"] == old["privacy"]
    assert {k: v for k, v in texts.items() if k not in ("greet", "thanks", "goodbye")} == {
        k: v for k, v in old.items() if k not in ("greet", "thanks", "goodbye")
    }
    after_text = (content_dir / "th.yml").read_text(encoding="utf-8")
    # lines removed + added: review (2x2), reviewed_by (2x1 added), greet.sms (2), goodbye (2)
    assert _changed_lines(before_text, after_text) == 10
    assert after_text.splitlines()[:5] == before_text.splitlines()[:5], "header comment kept"

    # the reviewed texts now export without fuzzy, with the reviewer, and round-trip unchanged
    catalog = read_po(io.BytesIO(po.export_po(content_dir, "th")))
    greet = catalog.get(_texts(content_dir, "en")["greet"]["text"], context="greet")
    assert greet is not None and not greet.fuzzy and "Reviewed by Ploy S., 2026-05-04" in greet.auto_comments
    again = po.import_po(content_dir, _export(content_dir, "th", tmp_path), "Someone Else", DAY)
    assert not again.written and (content_dir / "th.yml").read_text(encoding="utf-8") == after_text

    # flagging a reviewed text as fuzzy again sends it back to machine_translated
    path = _export(content_dir, "th", tmp_path)
    _edit(path, {"thanks": (None, True)})
    po.import_po(content_dir, path, "Ploy S.", DAY)
    assert _texts(content_dir, "th")["thanks"] == {"text": old["thanks"]["text"], "review": "machine_translated"}


def test_a_broken_placeholder_is_rejected_and_nothing_written(content_dir: Path, tmp_path: Path) -> None:
    before = (content_dir / "ru.yml").read_bytes()
    path = _export(content_dir, "ru", tmp_path)
    _edit(
        path,
        {
            "privacy": ("Я храню ваши сообщения 30 дней.", False),  # {retention_days} lost
            "orgs_none.sms": ("Нет проверенной группы для {страна}.", False),  # translated placeholder
            "get_help_intro": ("Горячие линии в {country:", False),  # broken brace
            "thanks": ("Пожалуйста!", False),  # a good edit, not written either
        },
    )
    with pytest.raises(po.ImportRejected) as rejected:
        po.import_po(content_dir, path, "Olena", DAY)
    message = str(rejected.value)
    assert "nothing written" in message
    assert "privacy: placeholders differ from English (missing {retention_days})" in message
    assert "orgs_none.sms: placeholders differ from English (missing {country}, unknown {страна})" in message
    assert "get_help_intro: broken {braces}" in message
    assert len(rejected.value.problems) == 3
    assert (content_dir / "ru.yml").read_bytes() == before


def test_an_sms_text_over_the_limit_is_rejected(content_dir: Path, tmp_path: Path) -> None:
    before = (content_dir / "th.yml").read_bytes()
    long_sms = "ข้อความยาวมาก " * 20
    assert segments.count(long_sms).segments > po.SMS_MAX_SEGMENTS
    path = _export(content_dir, "th", tmp_path)
    _edit(path, {"greet.sms": (long_sms, False)})
    with pytest.raises(po.ImportRejected, match=r"greet\.sms: 5 SMS \(\d+ UCS-2 units\), more than the limit of 3 SMS"):
        po.import_po(content_dir, path, "Ploy S.", DAY)
    assert (content_dir / "th.yml").read_bytes() == before


def test_a_long_button_label_and_a_stale_english_source_are_rejected(content_dir: Path, tmp_path: Path) -> None:
    path = _export(content_dir, "id", tmp_path)
    _edit(path, {"button_yes": ("Ya, saya mau memeriksa tawaran ini sekarang", False)})
    with pytest.raises(po.ImportRejected, match="button_yes: 43 characters"):
        po.import_po(content_dir, path, "Sari", DAY)
    path = _export(content_dir, "vi", tmp_path)
    english = (content_dir / "en.yml").read_text(encoding="utf-8")
    (content_dir / "en.yml").write_text(english.replace("\"Thanks - I'll use", "\"Thank you - I'll use"), encoding="utf-8")
    with pytest.raises(po.ImportRejected, match="country_set: the English text changed since this file was exported"):
        po.import_po(content_dir, path, "Lan", DAY)


def test_the_command_line_exports_checks_and_imports(
    content_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SP_DATA_DIR", str(content_dir.parent))
    out = tmp_path / "sheet"
    assert main(["content", "export", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{c}.po" for c in TRANSLATED), po.TEMPLATE_NAME])
    assert main(["content", "export", "--out", str(out), "--check"]) == 0
    _edit(out / "uk.po", {"thanks": (None, False)})
    assert main(["content", "export", "--out", str(out), "--check"]) == 1
    assert "python -m bot content export" in capsys.readouterr().out
    assert main(["content", "import", str(out / "uk.po"), "--reviewer", "Oksana", "--date", "2026-05-04"]) == 0
    assert _texts(content_dir, "uk")["thanks"]["reviewed_by"] == "Oksana, 2026-05-04"
    _edit(out / "uk.po", {"privacy": ("Я зберігаю твої повідомлення.", False)})
    assert main(["content", "import", str(out / "uk.po"), "--reviewer", "Oksana"]) == 2
    assert "privacy: placeholders differ" in capsys.readouterr().err


def test_the_yaml_rewrite_touches_only_the_edited_lines() -> None:
    """Comments, other keys, a block scalar, `sources` and CRLF line ends survive an edit."""
    before = (
        '# header\r\nmeta:\r\n  language: xx\r\ntexts:\r\n  a:\r\n    text: "x"\r\n    review: machine_translated\r\n'
        '  # --- a section ---\r\n\r\n  b:\r\n    text: >-\r\n      long\r\n      text\r\n    sms: "s"\r\n'
        '    review: native_reviewed\r\n    reviewed_by: "Old, 2025-01-01"\r\n    sources: ["https://x"]\r\n'
    )
    edits: dict[str, dict[str, str | None]] = {
        "a": {"sms": "new"},
        "b": {"text": 'say "help"', "review": "machine_translated", "reviewed_by": None},
    }
    after = po.rewrite(before, edits)
    assert after == before.replace(
        '    text: "x"\r\n', '    text: "x"\r\n    sms: "new"\r\n'
    ).replace(
        "    text: >-\r\n      long\r\n      text\r\n", '    text: "say \\"help\\""\r\n'
    ).replace(
        '    review: native_reviewed\r\n    reviewed_by: "Old, 2025-01-01"\r\n', "    review: machine_translated\r\n"
    )  # fmt: skip
    entry = yaml.safe_load(after)["texts"]["b"]
    assert entry == {"text": 'say "help"', "sms": "s", "review": "machine_translated", "sources": ["https://x"]}
