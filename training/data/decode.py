"""Text decoding of data files, decided line by line, with one warning per file.

Each line is decoded as strict UTF-8 first, then Windows-1252, then ISO-8859-1 (which
accepts any byte). A file whose lines are all UTF-8 is decoded in one call. Only lines
decoded otherwise than the file's expected encoding are reported, in one `DataWarning`
with counts and the first place ("12 lines decoded as Windows-1252, first at
movies.dat:45"). A line is never decoded twice; a line that is valid UTF-8 but looks like
UTF-8 text that was decoded as Windows-1252 and encoded again ("AmÃ©lie") is reported as
double-encoded, and left as it is.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from training.data.errors import DataError, DataWarning

__all__ = ["CP1252", "LATIN1", "UTF8", "DecodedLines", "decode_lines", "warn_control_chars"]

UTF8, CP1252, LATIN1 = "UTF-8", "Windows-1252", "ISO-8859-1"
_BOM = b"\xef\xbb\xbf"
# Bytes 0x80-0x9f: printable in Windows-1252, C1 control characters in ISO-8859-1.
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152-\u2122]")


@dataclass
class _Tally:
    count: int = 0
    first: int = 0

    def add(self, line: int) -> None:
        self.count += 1
        self.first = self.first or line


@dataclass
class DecodedLines:
    """The decoded lines of one file (line ends removed; line n is `lines[n - 1]`)."""

    where: str
    lines: list[str]
    encodings: dict[str, _Tally] = field(default_factory=dict)
    double_encoded: _Tally = field(default_factory=_Tally)

    def numbered(self) -> Iterable[tuple[int, str]]:
        """(line number, text) of every line that is not blank."""
        for number, line in enumerate(self.lines, start=1):
            if line.strip():
                yield number, line


def _check_not_utf16(raw: bytes, where: str) -> None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise DataError(
            "wrong encoding: the file looks like UTF-16 (it has NUL bytes); re-save it as "
            "UTF-8 text",
            path=where,
        )


def _double_encoded(text: str) -> bool:
    """True when `text` reads as UTF-8 bytes that were decoded as Windows-1252 or ISO-8859-1
    and encoded as UTF-8 again (e.g. 'AmÃ©lie')."""
    if not _MOJIBAKE.search(text):
        return False
    for codec in ("cp1252", "latin-1"):
        try:
            again = text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        return again != text
    return False


def _decode_line(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), UTF8
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), CP1252
    except UnicodeDecodeError:
        return raw.decode("latin-1"), LATIN1


def decode_lines(raw: bytes, where: str, *, expected: str = UTF8) -> DecodedLines:
    """Decode `raw` line by line (see the module doc). `expected` is the encoding the
    format specifies (UTF8 or LATIN1): lines decoded as it, or as plain ASCII, are not
    reported. A leading UTF-8 byte-order mark is dropped; UTF-16 is refused (DataError)."""
    _check_not_utf16(raw, where)
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    out = DecodedLines(where, [])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        out.lines = text.split("\n")
        if not text.isascii():
            for number, line in enumerate(out.lines, start=1):
                if not line.isascii():
                    out.encodings.setdefault(UTF8, _Tally()).add(number)
                    if _double_encoded(line):
                        out.double_encoded.add(number)
    else:
        for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
            line, codec = _decode_line(line_bytes)
            if not line_bytes.isascii():
                # Windows-1252 and ISO-8859-1 agree on bytes 0xa0-0xff: call such a line
                # ISO-8859-1 unless it has a byte where they differ.
                if codec == CP1252 and not _C1_BYTES.search(line_bytes):
                    codec = LATIN1
                out.encodings.setdefault(codec, _Tally()).add(number)
                if codec == UTF8 and _double_encoded(line):
                    out.double_encoded.add(number)
            out.lines.append(line)
    out.lines = [line.removesuffix("\r") for line in out.lines]
    _warn(out, expected)
    return out


def _warn(out: DecodedLines, expected: str) -> None:
    parts = [
        f"{tally.count:,} line{'s' * (tally.count != 1)} decoded as {codec}, first at "
        f"{out.where}:{tally.first}"
        for codec, tally in out.encodings.items()
        if codec != expected
    ]
    if out.double_encoded.count:
        n = out.double_encoded.count
        parts.append(
            f"{n:,} line{'s' * (n != 1)} look{'s' * (n == 1)} double-encoded (UTF-8 decoded "
            f"as Windows-1252 and encoded again, e.g. 'Ã©' for 'é'), first at "
            f"{out.where}:{out.double_encoded.first}; they are kept as they are"
        )
    if parts:
        mixed = len(out.encodings) > 1 or (out.encodings and expected not in out.encodings)
        lead = f"{out.where} is not all {expected}: " if mixed else f"{out.where}: "
        warnings.warn(lead + "; ".join(parts), DataWarning, stacklevel=3)


def warn_control_chars(where: str, texts: Iterable[tuple[int, str]], *, what: str) -> None:
    """One `DataWarning` naming the lines whose `what` (e.g. 'title') holds a control
    character (e.g. a C1 character from a byte 0x80-0x9f read as ISO-8859-1)."""
    bad = [
        (number, char)
        for number, text in texts
        for char in text
        if unicodedata.category(char) == "Cc" and char != "\t"
    ]
    if not bad:
        return
    lines = sorted({number for number, _ in bad})
    shown = ", ".join(f"{where}:{n}" for n in lines[:5]) + (" ..." if len(lines) > 5 else "")
    warnings.warn(
        f"{len(lines)} {what}{'s' * (len(lines) != 1)} contain{'s' * (len(lines) == 1)} a "
        f"control character (first {bad[0][1]!r}), at {shown}; check the file's encoding",
        DataWarning,
        stacklevel=2,
    )
