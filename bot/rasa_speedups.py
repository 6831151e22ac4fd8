"""Measured waste in the pinned Rasa (3.6), removed inside the Rasa server process.

Loaded by the Rasa server with our gateway channel (bot/rasa_channel.py). Each change keeps
Rasa's behaviour and is measured in docs/performance.md (benchmarks/throughput.py):

* ``RemoteAction._validate_action_result`` calls ``jsonschema.validate`` on every custom action's
  answer, which first checks Rasa's constant response schema against the JSON Schema meta-schema:
  ~20 ms of CPU per action call, a third of Rasa's whole cost per message. The answer is still
  validated against the same schema, by one validator built once; an invalid answer raises the
  same ``ValidationError`` with the same message.
"""

from __future__ import annotations

from typing import Any, Dict

_installed = False


def install() -> None:
    """Patch once per process; a Rasa without the patched method is left alone."""
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction

    original = getattr(RemoteAction, "_validate_action_result", None)
    if original is None or not hasattr(RemoteAction, "action_response_format_spec"):
        return
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _installed = True


_validator: Any = None


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """``jsonschema.validate(result, spec)`` without re-checking the constant ``spec`` each call."""
    global _validator
    from jsonschema import exceptions, validators
    from rasa.shared.constants import DOCS_BASE_URL

    if _validator is None:
        schema = self.action_response_format_spec()
        cls = validators.validator_for(schema)
        cls.check_schema(schema)  # once, as jsonschema.validate does on every call
        _validator = cls(schema)
    error = exceptions.best_match(_validator.iter_errors(result))
    if error is not None:
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True
