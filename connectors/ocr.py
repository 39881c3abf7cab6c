"""OCR for PDF pages without a text layer (scans, faxes, photographed signature pages).

pypdfium2 (PDFium, shipped in its wheel) renders the page to a grey-scale image and Debian's
``tesseract`` (package ``tesseract-ocr``, plus ``tesseract-ocr-fra``/``-deu``/... per language)
reads it, one subprocess per page with a time limit. Nothing is downloaded: tesseract's language
data are Debian packages. Where tesseract is not installed, or ``SOVRA_OCR=off``, such pages are
skipped with a reason that says so, never dropped silently.

Settings (environment):
- ``SOVRA_OCR``: ``auto`` (default: OCR when tesseract is found) or ``off``.
- ``SOVRA_OCR_LANGUAGES``: tesseract languages joined by ``+`` (``eng+fra+deu``); default: those
  of English, French, German, Dutch, Italian and Spanish that are installed.
- ``SOVRA_OCR_DPI`` (default 300) and ``SOVRA_OCR_TIMEOUT_S`` per page (default 120).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

EUROPEAN = ("eng", "fra", "deu", "nld", "ita", "spa")
NOT_INSTALLED = "no text layer; OCR not installed"
TURNED_OFF = "no text layer; OCR is off (SOVRA_OCR=off)"


@dataclass(frozen=True)
class OcrEngine:
    command: str
    languages: str
    dpi: int = 300
    timeout_s: float = 120.0


@functools.lru_cache(maxsize=8)
def _installed_languages(command: str) -> tuple[str, ...]:
    try:
        out = subprocess.run([command, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    # First line is a header ("List of available languages in ...").
    return tuple(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def engine() -> OcrEngine | str:
    """The configured OCR engine, or why there is none (the reason a skipped page reports)."""
    if os.environ.get("SOVRA_OCR", "auto").strip().lower() in {"off", "0", "false", "no"}:
        return TURNED_OFF
    command = shutil.which("tesseract")
    if command is None:
        return NOT_INSTALLED
    installed = _installed_languages(command)
    wanted = os.environ.get("SOVRA_OCR_LANGUAGES", "").strip()
    if wanted:
        missing = [lang for lang in wanted.split("+") if lang not in installed]
        if missing:
            return (
                f"no text layer; OCR language(s) {', '.join(missing)} not installed "
                f"(apt-get install {' '.join('tesseract-ocr-' + m for m in missing)})"
            )
        languages = wanted
    else:
        languages = "+".join(lang for lang in EUROPEAN if lang in installed) or "eng"
    return OcrEngine(
        command,
        languages,
        dpi=int(os.environ.get("SOVRA_OCR_DPI", "300") or 300),
        timeout_s=float(os.environ.get("SOVRA_OCR_TIMEOUT_S", "120") or 120),
    )


class PdfOcr:
    """Reads pages of one PDF by OCR; opens the file with PDFium on first use only."""

    def __init__(self, path: Path, ocr: OcrEngine) -> None:
        self.path = path
        self.ocr = ocr
        self._pdf: object | None = None

    def page_text(self, number: int) -> str:
        """Text of page ``number`` (from 1). Raises ``OcrError`` with a short reason."""
        import pypdfium2 as pdfium

        try:
            if self._pdf is None:
                self._pdf = pdfium.PdfDocument(str(self.path))
            page = self._pdf[number - 1]  # type: ignore[index]
            bitmap = page.render(scale=self.ocr.dpi / 72, grayscale=True)
            image = _pgm(bitmap)
        except Exception as exc:  # PDFium reports damage as several types
            raise OcrError(f"the page cannot be rendered for OCR ({type(exc).__name__}: {exc})") from exc
        try:
            done = subprocess.run(
                [self.ocr.command, "stdin", "stdout", "-l", self.ocr.languages, "--psm", "3"],
                input=image,
                capture_output=True,
                timeout=self.ocr.timeout_s,
                check=False,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # one page per process; ingest owns the cores
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrError(f"OCR took longer than {self.ocr.timeout_s:.0f} s (SOVRA_OCR_TIMEOUT_S)") from exc
        except OSError as exc:
            raise OcrError(f"OCR could not start ({exc})") from exc
        if done.returncode != 0:
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise OcrError(f"OCR failed (tesseract exit {done.returncode}: {why[0]})")
        return done.stdout.decode("utf-8", "replace")

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()  # type: ignore[attr-defined]
            self._pdf = None


class OcrError(Exception):
    pass


def _pgm(bitmap: object) -> bytes:
    """A PDFium grey-scale bitmap as a binary PGM image (tesseract reads it via leptonica)."""
    width, height, stride = bitmap.width, bitmap.height, bitmap.stride  # type: ignore[attr-defined]
    raw = bytes(bitmap.buffer)  # type: ignore[attr-defined]
    rows = raw if stride == width else b"".join(raw[r * stride : r * stride + width] for r in range(height))
    return b"P5\n%d %d\n255\n" % (width, height) + rows
