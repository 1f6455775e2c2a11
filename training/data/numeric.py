"""Fast, strict reading of all-numeric rating files (GroupLens `ratings.dat/.csv`, `u.data`).

A possessive regular expression (stdlib `re`) checks every line's shape in one pass:
decimal integer ids and timestamps, a decimal rating. pandas' C parser then converts the
columns. The first line that fails either step is found and reported by file, line and
value (`DataError`); nothing half-read is returned. `bench/data_scale.py` measures it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.ids import decimal_int
from training.data.errors import DataError

__all__ = ["NumericColumn", "line_of_row", "read_numeric_table"]

_INT = rb"-?[0-9]{1,19}"
_NUMBER = rb"-?[0-9]+(?:\.[0-9]+)?"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class NumericColumn:
    """One column: its name in messages and whether it holds integers or decimals."""

    name: str
    integer: bool = True


def _check_bytes(raw: bytes, where: str) -> None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise DataError(
            "wrong encoding: the file looks like UTF-16; this file holds only numbers and "
            "separators, as ASCII text. Use the original file, or re-save it as UTF-8",
            path=where,
        )
    if not raw.isascii():
        at = next(i for i, b in enumerate(raw) if b > 0x7F)
        raise DataError(
            f"wrong encoding: byte 0x{raw[at]:02x} is not ASCII; this file holds only "
            "numbers and separators",
            path=where,
            line=raw.count(b"\n", 0, at) + 1,
        )


def _diagnose(line: str, number: int, where: str, sep: str, columns: list[NumericColumn]):
    """The DataError for one line that failed the shape check (None if it is fine)."""
    fields = line.split(sep)
    if len(fields) != len(columns):
        layout = sep.join(c.name for c in columns)
        raise DataError(
            f"malformed line: expected {len(columns)} fields {layout}, got {len(fields)}: "
            f"{line[:80]!r}",
            path=where,
            line=number,
        )
    for column, value in zip(columns, fields, strict=True):
        if column.integer and decimal_int(value) is None:
            raise DataError(
                f"malformed line: {column.name} {value!r} is not an integer (decimal digits "
                "within the int64 range)",
                path=where,
                line=number,
            )
        if not column.integer and not re.fullmatch(_NUMBER.decode(), value):
            raise DataError(
                f"malformed line: {column.name} {value!r} is not a number", path=where, line=number
            )


def _scan(text_lines: list[str], first_line: int, where: str, sep: str, columns) -> None:
    for offset, line in enumerate(text_lines):
        line = line.removesuffix("\r")
        if line.strip():
            _diagnose(line, first_line + offset, where, sep, columns)


def line_of_row(raw: bytes, row: int, *, header: bool) -> int:
    """The 1-based line number of data row `row` (blank lines are not rows)."""
    lines = raw.split(b"\n")
    seen = -1
    for number, line in enumerate(lines, start=1):
        if header and number == 1:
            continue
        if line.strip():
            seen += 1
            if seen == row:
                return number
    return len(lines)


def read_numeric_table(
    raw: bytes, where: str, *, sep: str, columns: list[NumericColumn], header: bool = False
) -> dict[str, np.ndarray]:
    """Columns of a separated all-numeric file: int64 for integer columns, float64 otherwise.

    `header`: skip the first line (CSV releases). Raises `DataError` naming the file and the
    first bad line; an empty file (no data rows) is an error too.
    """
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    _check_bytes(raw, where)
    start = raw.index(b"\n") + 1 if header and b"\n" in raw else (len(raw) if header else 0)
    if header:
        got = raw[:start].decode("ascii").strip().split(sep)
        if got != [c.name for c in columns]:
            layout = sep.join(c.name for c in columns)
            raise DataError(f"malformed header: expected {layout}, got {got}", path=where, line=1)
    body = raw[start:]
    first_line = 2 if header else 1
    fields = re.escape(sep.encode()).join(_INT if c.integer else _NUMBER for c in columns)
    shape = re.compile(rb"(?:" + fields + rb"[ \t]*(?:\r?\n|\Z)|[ \t]*\r?\n)*+")
    end = shape.match(body).end()  # type: ignore[union-attr]
    if end < len(body):
        line_start = body.rfind(b"\n", 0, end) + 1
        line_end = body.find(b"\n", end)
        bad = body[line_start : None if line_end < 0 else line_end].decode("ascii")
        number = first_line + body.count(b"\n", 0, line_start)
        _diagnose(bad.removesuffix("\r"), number, where, sep, columns)
    if not body.strip():
        raise DataError("the ratings file is empty, so there is nothing to fit", path=where)
    names = [c.name for c in columns]
    dtypes = {c.name: np.int64 if c.integer else np.float64 for c in columns}
    # The C parser takes one-character separators.
    parsed = body.replace(sep.encode(), b"\t") if len(sep) > 1 else body
    try:
        frame = pd.read_csv(
            io.BytesIO(parsed),
            sep="\t" if len(sep) > 1 else sep,
            header=None,
            names=names,
            dtype=dtypes,  # type: ignore[arg-type]
            engine="c",
            skip_blank_lines=True,
        )
    except (ValueError, OverflowError) as exc:  # e.g. a 19-digit id beyond int64
        _scan(body.decode("ascii").split("\n"), first_line, where, sep, columns)
        raise DataError(f"cannot read the file: {exc}", path=where) from None
    return {name: frame[name].to_numpy() for name in names}
