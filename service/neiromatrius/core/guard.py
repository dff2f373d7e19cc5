"""The reply guard: the last check on a model's answer before it is stored and sent.

Instructions in the system prompt ask the model not to obey the customer's injected instructions;
this check does not rely on the model having listened. It refuses an answer whose reply carries the
deployment's canary, a long verbatim stretch of the system prompt or one of the service's secrets,
or whose category is not one the business offers now. A refused answer goes to a human and nothing is sent.

Matching runs on folded text (NFKC, invisible format characters dropped, case-folded, whitespace
collapsed), so re-wrapping, upper-casing or zero width characters do not hide a leak.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from ..errors import UnusableAnswer
from .categories import CategoryCatalog, as_catalog
from .models import Triage

# A reply sharing this many consecutive characters with the system prompt is quoting it. 40 folded
# characters are six to eight words: longer than the phrases a fitting reply shares with its
# instructions ("a colleague will follow up" is 26), short enough to catch one leaked rule or line.
PROMPT_WINDOW = 40
# A secret shorter than this, squeezed to letters and digits, could turn up in ordinary words.
MIN_SECRET_CHARS = 16


class ReplyGuard:
    """Checks every responder's answer (``check``): built once from the settings, reading the current categories."""

    def __init__(
        self,
        *,
        categories: Sequence[str] | CategoryCatalog,
        system_prompt: str,
        canary: str,
        secrets: Iterable[str] = (),
    ) -> None:
        self._catalog = as_catalog(categories)  # the current list at each check: the business edits it
        prompt = _fold(system_prompt)
        self._prompt_windows = {prompt[i : i + PROMPT_WINDOW] for i in range(len(prompt) - PROMPT_WINDOW + 1)}
        self._canary = _squeeze(canary)
        if len(self._canary) < MIN_SECRET_CHARS:
            raise ValueError("the canary is too short to be told apart from ordinary text")
        squeezed = (_squeeze(secret) for secret in secrets)
        self._secrets = tuple(secret for secret in squeezed if len(secret) >= MIN_SECRET_CHARS)

    def check(self, triage: Triage) -> None:
        """Raise ``UnusableAnswer`` (with the call's usage) if ``triage`` may not be stored and sent."""
        reason = self._refusal(triage)
        if reason is not None:
            raise UnusableAnswer(reason, usage=triage.usage)  # the tokens were spent all the same

    def _refusal(self, triage: Triage) -> str | None:
        if triage.classification.category not in self._catalog.current.names:
            return "category_not_allowed"
        folded = _fold(triage.reply)
        squeezed = _squeeze(folded)
        if self._canary in squeezed or self._quotes_prompt(folded):
            return "leaked_system_prompt"
        if any(secret in squeezed for secret in self._secrets):
            return "leaked_secret"
        return None

    def _quotes_prompt(self, folded: str) -> bool:
        windows = self._prompt_windows
        return any(folded[i : i + PROMPT_WINDOW] in windows for i in range(len(folded) - PROMPT_WINDOW + 1))


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    visible = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return " ".join(visible.casefold().split())


def _squeeze(text: str) -> str:
    """Letters and digits only: a secret or the canary spelled out with spaces or dashes still matches."""
    return "".join(char for char in _fold(text) if char.isalnum())
