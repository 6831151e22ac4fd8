"""The texts as gettext PO files for volunteer translators (Weblate, Crowdin, Poedit), and back.

Export: one PO file per language from data/content/<code>.yml. English is the source (msgid), the
language's text the translation (msgstr); each key's chat text and its SMS rendering are separate
entries (msgctxt ``greet`` and ``greet.sms``). ``review: machine_translated`` becomes the ``fuzzy``
flag; the comment for translators (``#.``) says what the text is for, its placeholders and, for
SMS entries, the SMS limit. A template (``safe-passage.pot``, empty translations) starts a new
language.

Import: a reviewed PO file goes back into the language's YAML file. Placeholders must be those of
the English text and an SMS rendering must fit the SMS limit, else the whole file is rejected and
nothing is written. A key whose entries are all not fuzzy and that changed or was confirmed becomes
``review: native_reviewed`` with ``reviewed_by: "<reviewer>, <date>"``; a fuzzy entry stays (or
becomes) ``machine_translated``. The YAML file is edited line by line - only the lines of changed
entries - so comments, order and formatting stay, and an import without changes leaves the file
byte-identical.

Pure code, no Rasa imports. See docs/translation.md.
"""

from __future__ import annotations

import argparse
import datetime
import io
import string
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileError, read_po, write_po

from bot.sms import segments

SOURCE_LANGUAGE = "en"
TEMPLATE_NAME = "safe-passage.pot"
# the limits the content tests enforce (tests/test_sms.py, tests/test_content.py)
SMS_MAX_SEGMENTS = 3
BUTTON_MAX_CHARS = 30
SMS_SUFFIX = ".sms"
VARIANTS = ("text", "sms")

# What each placeholder is filled with (a translation keeps every one, unchanged, in {braces}).
PLACEHOLDERS = {
    "retention_days": "how many days her messages are kept (from the configuration)",
    "country": "the name of her country, in this language",
    "law": "the title of the country's main anti-trafficking law",
    "caution": "a caution about the country's law (a text of its own)",
    "regulator": "the authority that licenses recruitment agencies",
    "hours": "the counsellors' working hours",
    "number": "a phone number",
    "numbers": "a list of emergency numbers",
    "countries": "the list of countries the bot knows",
}

# What a text is for, by key (exact) - then by the start of the key; otherwise the key's words.
PURPOSES = {
    "greet": "The first message: who the bot is and what it can do.",
    "bot_identity": "The answer to 'who are you / are you a bot?'.",
    "privacy": "The privacy notice: what is kept, for how long, who reads it, how to erase. It must stay true.",
    "confidentiality": "The counsellors' confidentiality and its limits, shown before she talks to one. "
    "Do not promise secrecy.",
    "counsellor_offer": "The offer to talk to a counsellor, a real person.",
    "danger": "The first reply when she says she is in danger; the emergency numbers follow.",
    "safety_net": "Added to replies the bot did not understand. The quoted word she is told to write must "
    "be one the bot treats as a call for help (tests/test_content.py checks it).",
    "safety_net_no_number": "Like safety_net, where no emergency number is confirmed. The quoted word must be "
    "one the bot treats as a call for help.",
    "rate_limited": "Sent when she writes very fast. The quoted help word must be one the bot treats as a call for help.",
    "job_check_offer": "The offer to go through the 6-question job-offer check.",
    "job_check_not_yes_no": "When her answer to a check question is not yes or no. On SMS never tell her to "
    "type STOP or its translation: that opts her out of all SMS.",
    "legal_rights_general": "Her rights in general. Say what should happen, not what the law guarantees.",
    "legal_rights_caution": "The country's law caution, inserted as it is.",
    "caution_state_services": "A warning shown where the authorities have punished victims.",
    "no_confirmed_emergency": "Said where no police or emergency number could be confirmed.",
    "online_relationship": "Grooming and sextortion online ('lover-boy' trick).",
    "photos_not_your_fault": "Follows online_relationship: if she already sent photos, it is not her fault, help "
    "exists, and sharing them (or threatening to) is a crime. Never blame her.",
    "legal_aid_general_cautious": "Legal-aid advice where going to the police may not be safe for her (Myanmar; a "
    "foreign girl in Thailand): never mention the police.",
    "flag_visa": "The tourist-visa red flag: she would have no legal protection. Do not call her the one who "
    "works illegally.",
    "erased": "Confirms that /erase (SMS: ERASE) deleted her data.",
    "erased_pending": "Confirms /erase when one part will be deleted a few minutes later.",
}
PREFIX_PURPOSES = (
    ("button_", f"A button label (at most {BUTTON_MAX_CHARS} characters)."),
    ("job_check_q_", "A yes/no question of the 6-question job-offer check; keep the number (1/6 ...)."),
    ("job_check_", "The 6-question job-offer check."),
    ("flag_", "A red flag listed after the job-offer check when her answer raised it."),
    ("right_", "One line of the list of victims' rights under her country's law."),
    ("law_caution_", "A caution about this country's law, shown with her rights. States a fact: keep it exact."),
    ("legal_", "Her legal rights."),
    ("kind_", "The kind of phone line, shown before the number in the list of helplines."),
    ("hotline_", "A label next to a phone number."),
    ("fees_", "What the law of her country says about recruitment fees."),
    ("orgs_", "The heading above a list of organisations."),
    ("escalation_", "Said when her message goes to a human counsellor."),
    ("handoff_", "Said when a counsellor joins or leaves the chat. A quoted help word must be one the bot "
     "treats as a call for help."),
    ("counsellor_", "The offer to talk to a counsellor."),
    ("sms_", "SMS only. The words she can reply with must be SMS keywords (data/sms/keywords.yml)."),
    ("input_", "The reply to a message the bot cannot read as it is."),
    ("language_", "Choosing the language."),
    ("country_", "Choosing her country."),
)  # fmt: skip


class ImportRejected(ValueError):
    """A PO file that cannot be imported; ``problems`` lists each key and the reason."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: rejected, nothing written ({len(problems)} problem(s)):\n{listing}")


@dataclass
class ImportResult:
    """What an import changed (or would change, with ``dry_run``)."""

    language: str
    path: Path
    changed: list[str] = field(default_factory=list)  # keys whose text or SMS text changed
    reviewed: list[str] = field(default_factory=list)  # keys now native_reviewed
    unreviewed: list[str] = field(default_factory=list)  # keys back to machine_translated
    written: bool = False


# -- reading the YAML ----------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    texts = raw.get("texts")
    if not isinstance(texts, dict):
        raise ValueError(f"{path}: no `texts:` mapping")
    return texts


def languages(content_dir: Path) -> list[str]:
    """The translated languages: every data/content/<code>.yml except English, sorted."""
    return sorted(p.stem for p in content_dir.glob("*.yml") if p.stem != SOURCE_LANGUAGE)


def placeholders(template: str) -> set[str]:
    """The {names} of a str.format template (ValueError if its braces are broken)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None and name != ""}


def _language_name(content_dir: Path, code: str) -> str:
    path = content_dir.parent / "languages.yml"
    if path.exists():
        info = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("languages", {}).get(code) or {}
        if info.get("name"):
            return f"{info['name']} ({code})"
    return code


# -- export --------------------------------------------------------------------------------


def sms_limit_note() -> str:
    gsm, ucs = (part * SMS_MAX_SEGMENTS for _, part in (segments.LIMITS[segments.GSM7], segments.LIMITS[segments.UCS2]))
    return (
        f"SMS rendering: at most {SMS_MAX_SEGMENTS} SMS = {gsm} characters if all are in the GSM-7 alphabet "
        f"(plain Latin), else {ucs} (Thai, Burmese, Khmer, Chinese, Cyrillic, Vietnamese or Romanian letters...); "
        "an emoji counts twice. Keep it shorter than the chat text."
    )


def purpose(key: str) -> str:
    if key in PURPOSES:
        return PURPOSES[key]
    for prefix, text in PREFIX_PURPOSES:
        if key.startswith(prefix):
            return text
    return key.replace("_", " ").capitalize() + "."


def _comments(key: str, variant: str, english: dict[str, Any], entry: dict[str, Any] | None) -> list[str]:
    source = english[variant]
    lines = [f"{key}{SMS_SUFFIX if variant == 'sms' else ''}: {purpose(key)}"]
    if variant == "sms":
        lines.append(sms_limit_note())
    names = sorted(placeholders(source))
    if names:
        lines.append(
            "Keep unchanged: " + "; ".join(f"{{{name}}} = {PLACEHOLDERS.get(name, 'filled by the bot')}" for name in names)
        )
    if english.get("sources"):
        lines.append("Sources of the facts: " + " ".join(english["sources"]))
    if entry and entry.get("review") == "native_reviewed" and entry.get("reviewed_by"):
        lines.append(f"Reviewed by {entry['reviewed_by']}")
    return lines


def _flags(key: str, variant: str, source: str, translated: bool, fuzzy: bool) -> list[str]:
    flags = ["python-brace-format"] if placeholders(source) else []
    if key.startswith("button_") and variant == "text":
        flags.append(f"max-length:{BUTTON_MAX_CHARS}")  # Weblate checks it as she types
    if translated and fuzzy:
        flags.append("fuzzy")
    return flags


def _catalog(content_dir: Path, language: str | None) -> Catalog:
    english = _load(content_dir / f"{SOURCE_LANGUAGE}.yml")
    texts = _load(content_dir / f"{language}.yml") if language else {}
    name = _language_name(content_dir, language) if language else "template"
    source_file = f"data/content/{language}.yml" if language else "data/content/*.yml"
    catalog = Catalog(
        locale=language,
        project="Safe Passage",
        version="content",
        msgid_bugs_address="",
        last_translator="",
        language_team="Safe Passage volunteers",
        revision_date="YEAR-MO-DA HO:MI+ZONE",
        fuzzy=False,
        header_comment=(
            f"# Safe Passage - {name}: texts for translators and reviewers.\n"
            f"# Exported from {source_file} by `python -m bot content export`.\n"
            "# English is the source (msgid). fuzzy = machine translation, not yet\n"
            "# checked by a native speaker: correct or confirm the text, then clear\n"
            "# the flag. `python -m bot content import FILE.po --reviewer NAME`\n"
            "# brings the file back (docs/translation.md)."
        ),
    )
    for key, source in english.items():
        entry = texts.get(key) if language else None
        fuzzy = entry is not None and entry.get("review") != "native_reviewed"
        for variant in VARIANTS:
            if variant not in source:
                continue
            translation = (entry or {}).get(variant) or ""
            catalog.add(
                source[variant],
                translation,
                context=key + (SMS_SUFFIX if variant == "sms" else ""),
                auto_comments=_comments(key, variant, source, entry),
                flags=_flags(key, variant, source[variant], bool(translation), fuzzy),
            )
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=76, ignore_obsolete=True, include_previous=False)
    # no creation timestamp: the same texts always give the same file (the committed sheet is compared)
    lines = buffer.getvalue().splitlines(keepends=True)
    return b"".join(line for line in lines if not line.startswith(b'"POT-Creation-Date:'))


def export_po(content_dir: Path, language: str) -> bytes:
    """The PO file of ``language`` (English source, its translation, fuzzy where machine translated)."""
    if language == SOURCE_LANGUAGE:
        raise ValueError("English is the source language; export the template instead")
    if not (content_dir / f"{language}.yml").exists():
        raise ValueError(f"no {content_dir / language}.yml")
    return _po_bytes(_catalog(content_dir, language))


def export_template(content_dir: Path) -> bytes:
    """The template (POT): every English text with an empty translation, to start a new language."""
    return _po_bytes(_catalog(content_dir, None))


def expected_files(content_dir: Path, languages_: list[str] | None = None) -> dict[str, bytes]:
    """File name -> contents of a full export (the template only when every language is exported)."""
    files = {f"{code}.po": export_po(content_dir, code) for code in languages_ or languages(content_dir)}
    if not languages_:
        files[TEMPLATE_NAME] = export_template(content_dir)
    return files


def export(content_dir: Path, out_dir: Path, languages_: list[str] | None = None) -> list[Path]:
    """Write the PO files (and the template) into ``out_dir``; returns the files written or changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in expected_files(content_dir, languages_).items():
        path = out_dir / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            written.append(path)
    return written


def stale_files(content_dir: Path, out_dir: Path) -> list[str]:
    """The files of ``out_dir`` that differ from a fresh export (or are missing or left over)."""
    expected = expected_files(content_dir)
    stale = [
        name for name, data in expected.items() if not (out_dir / name).exists() or (out_dir / name).read_bytes() != data
    ]
    extra = [p.name for p in out_dir.glob("*.po") if p.name not in expected] if out_dir.exists() else []
    return sorted(stale + extra)


# -- import --------------------------------------------------------------------------------


def _quote(value: str) -> str:
    """A double-quoted YAML scalar on one line, as the content files write them."""
    dumped = yaml.dump(value, default_style='"', allow_unicode=True, width=sys.maxsize).rstrip("\n")
    return dumped.removesuffix("\n...")


def _problems(key: str, variant: str, english: str, translation: str) -> list[str]:
    where = key + (SMS_SUFFIX if variant == "sms" else "")
    if not translation.strip():
        return [f"{where}: the translation is only spaces"]
    try:
        found = placeholders(translation)
    except ValueError as error:
        return [f"{where}: broken {{braces}} ({error}); a literal brace is not allowed"]
    problems = []
    wanted = placeholders(english)
    if found != wanted:
        missing, extra = sorted(wanted - found), sorted(found - wanted)
        detail = ", ".join([*(f"missing {{{name}}}" for name in missing), *(f"unknown {{{name}}}" for name in extra)])
        problems.append(f"{where}: placeholders differ from English ({detail}); keep {sorted(wanted) or 'none'}")
    if variant == "sms":
        count = segments.count(translation)
        if count.segments > SMS_MAX_SEGMENTS:
            _, part = segments.LIMITS[count.encoding]
            problems.append(
                f"{where}: {count.segments} SMS ({count.units} {count.encoding} units), more than the limit of "
                f"{SMS_MAX_SEGMENTS} SMS = {part * SMS_MAX_SEGMENTS} units; shorten it"
            )
    if key.startswith("button_") and variant == "text" and len(translation) > BUTTON_MAX_CHARS:
        problems.append(f"{where}: {len(translation)} characters, a button label takes at most {BUTTON_MAX_CHARS}")
    return problems


def _po_language(catalog: Catalog, po_path: Path, known: list[str]) -> str | None:
    candidates = []
    if catalog.locale_identifier:
        identifier = str(catalog.locale_identifier).replace("-", "_")
        candidates += [identifier, identifier.split("_")[0]]
    candidates += [po_path.stem, po_path.stem.split("_")[0].split("-")[0]]
    return next((code for code in candidates if code in known), None)


def _read(po_path: Path) -> Catalog:
    try:
        with po_path.open("rb") as handle:
            return read_po(handle, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError) as error:
        raise ImportRejected(str(po_path), [f"not a valid PO file: {error}"]) from error
    except OSError as error:
        raise ImportRejected(str(po_path), [f"cannot read it: {error.strerror}"]) from error


def plan_import(
    content_dir: Path,
    po_path: Path,
    reviewer: str,
    date: datetime.date | None = None,
    language: str | None = None,
) -> tuple[ImportResult, str, str]:
    """Check ``po_path`` and work out the new YAML text (nothing written).

    Returns the result, the current file text and the new one. Raises ImportRejected."""
    catalog = _read(po_path)
    known = [SOURCE_LANGUAGE, *languages(content_dir)]
    code = language or _po_language(catalog, po_path, known)
    if code is None:
        raise ImportRejected(str(po_path), [f"which language? the Language header and the file name match none of {known}"])
    if code == SOURCE_LANGUAGE:
        raise ImportRejected(str(po_path), ["English is the source: edit data/content/en.yml itself"])
    reviewer = " ".join(reviewer.split())
    if not reviewer:
        raise ImportRejected(str(po_path), ["--reviewer: the reviewer's name is required"])
    yaml_path = content_dir / f"{code}.yml"
    english, current = _load(content_dir / f"{SOURCE_LANGUAGE}.yml"), _load(yaml_path)
    stamp = f"{reviewer}, {(date or datetime.date.today()).isoformat()}"

    problems: list[str] = []
    found: dict[str, dict[str, tuple[str, bool]]] = {}  # key -> variant -> (translation, fuzzy)
    for message in catalog:
        if not message.id:
            continue  # the header
        problems += _check_message(message, english, current, found)
    if problems:
        raise ImportRejected(str(po_path), problems)

    result = ImportResult(code, yaml_path)
    edits: dict[str, dict[str, str | None]] = {}
    for key, variants in found.items():
        entry = current[key]
        wanted = [v for v in VARIANTS if v in english[key]]
        changed = any(entry.get(v) != text for v, (text, _) in variants.items())
        fuzzy = any(is_fuzzy for _, is_fuzzy in variants.values())
        confirmed = set(variants) == set(wanted) and not fuzzy  # every entry of the key, none fuzzy
        reviewed = entry.get("review") == "native_reviewed"
        edit: dict[str, str | None] = {v: text for v, (text, _) in variants.items() if entry.get(v) != text}
        if confirmed and (changed or not reviewed):
            edit.update(review="native_reviewed", reviewed_by=stamp)
            result.reviewed.append(key)
        elif reviewed and not confirmed and (changed or fuzzy):  # flagged or changed without review
            edit.update(review="machine_translated", reviewed_by=None)
            result.unreviewed.append(key)
        if changed:
            result.changed.append(key)
        if edit:
            edits[key] = edit
    old = yaml_path.read_bytes().decode("utf-8")  # as it is: no newline translation
    new = rewrite(old, edits) if edits else old
    _verify(new, current, edits, yaml_path)
    return result, old, new


def _check_message(
    message: Message,
    english: dict[str, Any],
    current: dict[str, Any],
    found: dict[str, dict[str, tuple[str, bool]]],
) -> list[str]:
    context = message.context or ""
    if isinstance(message.id, (list, tuple)):
        return [f"{context or message.id[0]}: plural entries are not used by Safe Passage"]
    key, variant = (context[: -len(SMS_SUFFIX)], "sms") if context.endswith(SMS_SUFFIX) else (context, "text")
    if key not in english or variant not in english[key]:
        return [f"{context or message.id!r}: no such text in data/content/{SOURCE_LANGUAGE}.yml (export again)"]
    if message.id != english[key][variant]:
        return [f"{context}: the English text changed since this file was exported; export again and carry the work over"]
    if key not in current:
        return [f"{context}: the key is missing from the language's YAML file; add it there first"]
    translation = message.string if isinstance(message.string, str) else ""
    if not translation:
        return []  # untranslated: the YAML keeps what it has
    translation = unicodedata.normalize("NFC", translation)
    problems = _problems(key, variant, english[key][variant], translation)
    if not problems:
        found.setdefault(key, {})[variant] = (translation, message.fuzzy)
    return problems


def _verify(new: str, current: dict[str, Any], edits: dict[str, dict[str, str | None]], path: Path) -> None:
    """The rewritten text must load to exactly the old texts with the edits applied."""
    expected = {key: dict(entry) for key, entry in current.items()}
    for key, edit in edits.items():
        for name, value in edit.items():
            if value is None:
                expected[key].pop(name, None)
            else:
                expected[key][name] = value
    if (yaml.safe_load(new) or {}).get("texts") != expected:
        raise RuntimeError(f"{path}: the line-by-line rewrite did not give the expected texts; nothing written")


def import_po(
    content_dir: Path,
    po_path: Path,
    reviewer: str,
    date: datetime.date | None = None,
    language: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import a reviewed PO file into data/content/<code>.yml (see the module docstring)."""
    result, old, new = plan_import(content_dir, po_path, reviewer, date, language)
    if new != old and not dry_run:
        result.path.write_bytes(new.encode("utf-8"))
        result.written = True
    return result


# -- the line-by-line YAML rewrite ---------------------------------------------------------

_FIELD_ORDER = ("text", "sms", "review", "reviewed_by")
_KEY_INDENT, _FIELD_INDENT = "  ", "    "


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def rewrite(text: str, edits: dict[str, dict[str, str | None]]) -> str:
    """``text`` (a content file) with the fields of ``edits`` replaced, inserted or (None) removed.

    Only those lines change; a field's old value may span several lines (a block scalar)."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    start = next(i for i, line in enumerate(lines) if line.rstrip() == "texts:") + 1
    end = next((i for i in range(start, len(lines)) if _indent(lines[i]) == 0 and _significant(lines[i])), len(lines))
    starts = [i for i in range(start, end) if _indent(lines[i]) == len(_KEY_INDENT) and _significant(lines[i])]
    blocks = {lines[i].strip().split(":", 1)[0]: (i, j) for i, j in zip(starts, [*starts[1:], end], strict=True)}
    missing = set(edits) - set(blocks)
    if missing:
        raise ValueError(f"keys not found in the file: {sorted(missing)}")
    out: list[str] = []
    done = 0
    for key, (begin, stop) in blocks.items():
        if key in edits:
            out += lines[done:begin] + _rewrite_block(lines[begin:stop], edits[key], newline)
            done = stop
    return "".join(out + lines[done:])


def _significant(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _rewrite_block(block: list[str], edit: dict[str, str | None], newline: str) -> list[str]:
    """One key's lines with its fields edited; other lines (comments, sources, blank) kept."""
    head, body = block[0], block[1:]
    items: list[tuple[str | None, list[str]]] = []  # (field name or None, its lines)
    i = 0
    while i < len(body):
        line = body[i]
        if _indent(line) == len(_FIELD_INDENT) and _significant(line) and ":" in line:
            j = i + 1
            while j < len(body) and body[j].strip() and _indent(body[j]) > len(_FIELD_INDENT):
                j += 1  # a multi-line value
            items.append((line.strip().split(":", 1)[0], body[i:j]))
            i = j
        else:
            items.append((None, [line]))
            i += 1
    for name in _FIELD_ORDER:
        if name not in edit:
            continue
        value = edit[name]
        names = [item[0] for item in items]
        if value is None:
            items = [item for item in items if item[0] != name]
            continue
        rendered = [f"{_FIELD_INDENT}{name}: {_render(name, value)}{newline}"]
        if name in names:
            items[names.index(name)] = (name, rendered)
        else:  # after the fields that come before it (text, sms, review, reviewed_by)
            before = [k for k, n in enumerate(names) if n in _FIELD_ORDER[: _FIELD_ORDER.index(name)]]
            items.insert(before[-1] + 1 if before else 0, (name, rendered))
    return [head, *(line for _, item_lines in items for line in item_lines)]


def _render(name: str, value: str) -> str:
    return value if name == "review" else _quote(value)


# -- command line (`python -m bot content ...`, wired in bot/cli.py) ---------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="content_action", required=True)
    out = actions.add_parser("export", help="write translations/<code>.po (and the .pot template) for translators")
    out.add_argument("--out", type=Path, help="directory to write to (default: translations/)")
    out.add_argument("--lang", action="append", help="only this language (repeatable)")
    out.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files in --out are stale")
    into = actions.add_parser("import", help="bring a reviewed PO file back into data/content/<code>.yml")
    into.add_argument("po", type=Path, help="the reviewed FILE.po")
    into.add_argument("--reviewer", required=True, help="the native speaker who reviewed it (name or handle)")
    into.add_argument("--date", type=datetime.date.fromisoformat, help="review date YYYY-MM-DD (default: today)")
    into.add_argument("--lang", help="the language code, if the file's Language header does not say it")
    into.add_argument("--dry-run", action="store_true", help="check and report, write nothing")


def run(args: argparse.Namespace, content_dir: Path, default_out: Path) -> int:
    if args.content_action == "export":
        out_dir = args.out or default_out
        if args.check:
            stale = stale_files(content_dir, out_dir)
            for name in stale:
                print(f"stale: {out_dir / name}")
            if stale:
                print("Regenerate with: python -m bot content export")
            return 1 if stale else 0
        written = export(content_dir, out_dir, args.lang)
        print(f"{len(written)} file(s) written to {out_dir}" + "".join(f"\n  {p}" for p in written))
        return 0
    try:
        result = import_po(content_dir, args.po, args.reviewer, args.date, args.lang, args.dry_run)
    except ImportRejected as error:
        print(error, file=sys.stderr)
        return 2
    verb = "would change" if args.dry_run else "changed"
    print(f"{result.language}: {verb} {len(result.changed)} text(s), {len(result.reviewed)} now native_reviewed, "
          f"{len(result.unreviewed)} back to machine_translated")  # fmt: skip
    for label, keys in (("changed", result.changed), ("reviewed", result.reviewed), ("unreviewed", result.unreviewed)):
        if keys:
            print(f"  {label}: {', '.join(keys)}")
    print(f"{result.path} {'written' if result.written else 'unchanged'}; now run the tests (make pytest).")
    return 0
