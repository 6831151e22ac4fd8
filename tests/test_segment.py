"""The script-aware segmenter and the Rasa tokenizer component built on it."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.segment import segment
from bot.nlu.tokenizer import MultilingualTokenizer

CASES = {
    "th": ("ฉันได้งานที่มาเลเซียค่ะ", ["ฉัน", "ได้", "งาน", "ที่", "มาเลเซีย", "ค่ะ"]),
    "my": ("မြန်မာနိုင်ငံ", ["မြန်", "မာ", "နိုင်", "ငံ"]),
    "km": ("ខ្ញុំត្រូវការ", ["ខ្ញុំ", "ត្រូវ", "ការ"]),
    "zh": ("我需要帮助", ["我", "需", "要", "帮", "助"]),
    "vi": ("Tôi cần giúp đỡ!", ["Tôi", "cần", "giúp", "đỡ"]),
    "ru": ("Мне нужна помощь...", ["Мне", "нужна", "помощь"]),
    "ro": ("Am nevoie de ajutor, vă rog", ["Am", "nevoie", "de", "ajutor", "vă", "rog"]),
}


@pytest.mark.parametrize("language", sorted(CASES))
def test_segments_each_script(language: str) -> None:
    text, expected = CASES[language]
    assert [p.text for p in segment(text)] == expected


@pytest.mark.parametrize(
    "text",
    ["ฉันได้งาน ok ไหม", "我在Thailand工作", "Tôi làm ở 泰国", "အလုပ် job ရှိလား", "hi 😀 there", "ខ្ញុំ OK"],
)
def test_mixed_scripts_keep_order_and_offsets(text: str) -> None:
    pieces = segment(text)
    assert pieces, text
    assert all(text[p.start : p.end] == p.text for p in pieces)
    assert [p.start for p in pieces] == sorted(p.start for p in pieces)


def test_mixed_scripts_use_each_scripts_rule() -> None:
    assert [p.text for p in segment("ฉันได้งาน ok ไหม")] == ["ฉัน", "ได้", "งาน", "ok", "ไหม"]
    assert [p.text for p in segment("我在Thailand工作")] == ["我", "在", "Thailand", "工", "作"]


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "!!!", "\u200b"])
def test_nothing_to_segment(text: str) -> None:
    assert segment(text) == []


def test_component_always_yields_a_token() -> None:
    tokenizer = MultilingualTokenizer(MultilingualTokenizer.get_default_config())
    for text in ["😀😀", "ฉันต้องการความช่วยเหลือ", "help me"]:
        tokens = tokenizer.tokenize(Message(data={"text": text}), "text")
        assert tokens and all(t.text for t in tokens)
    thai = tokenizer.tokenize(Message(data={"text": "ช่วยด้วยค่ะ"}), "text")
    assert [t.text for t in thai] == ["ช่วยด้วย", "ค่ะ"]  # a dictionary word in pythainlp
