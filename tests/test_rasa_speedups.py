"""The Rasa process's speed-ups (bot/rasa_speedups.py) keep Rasa's behaviour exactly."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import rasa_speedups

GOOD: dict[str, Any] = {
    "events": [{"event": "slot", "name": "topic", "value": "legal_rights", "timestamp": None}],
    "responses": [{"text": "an answer", "buttons": [{"title": "Yes", "payload": "/affirm"}]}],
}
BAD: list[dict[str, Any]] = [
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": "not a list"},
    {"responses": [1, 2]},
]


def original(result: dict[str, Any]) -> str | bool:
    from jsonschema import validate

    try:
        validate(result, RemoteAction.action_response_format_spec())
    except ValidationError as error:
        return error.message
    return True


@pytest.fixture(autouse=True, scope="module")
def patched() -> None:
    rasa_speedups.install()
    rasa_speedups.install()  # idempotent


def test_installed_on_remote_action() -> None:
    assert RemoteAction._validate_action_result is rasa_speedups._validate_action_result


def test_a_valid_answer_passes() -> None:
    assert RemoteAction("action_answer", None)._validate_action_result(GOOD) is True
    assert original(GOOD) is True


@pytest.mark.parametrize("bad", BAD)
def test_an_invalid_answer_raises_the_same_error(bad: dict[str, Any]) -> None:
    expected = original(bad)
    assert isinstance(expected, str)
    with pytest.raises(ValidationError) as raised:
        RemoteAction("action_answer", None)._validate_action_result(bad)
    assert raised.value.message.startswith(expected + ". Failed to validate Action server response from API")
