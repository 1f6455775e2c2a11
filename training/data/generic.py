"""Generic interaction logs: `.csv`, `.tsv` or `.parquet` with user and item columns and
optional rating and timestamp, plus an optional items file (title, `|`-separated genres).

Text files are decoded line by line (`training.data.decode`) and parsed by pandas' C
parser; Parquet is read by `pyarrow` (the optional `parquet` extra). Ids stay the
source's own: a column whose every value is a decimal integer without leading zeros is
numeric, otherwise text (`--id-type` overrides). Every problem raises `DataError` naming
the file, the line (or Parquet row) and the value.
"""

from __future__ import annotations

import csv
import importlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.ids import decimal_int, id_problem, is_canonical_int
from training.data.decode import UTF8, decode_lines, warn_control_chars
from training.data.errors import DataError, DataWarning
from training.data.genre_mapping import GenreMapper
from training.data.load_options import COLUMN_DEFAULTS, LoadOptions
from training.data.numeric import line_of_row
from training.data.rules import Interactions

__all__ = ["INTERACTION_SUFFIXES", "read_interactions"]

INTERACTION_SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq")
_PARQUET_HINT = "install the extra with `pip install -e '.[parquet]'` (pyarrow)"

Locate = Callable[[int], str]  # data row -> "file, line N" for messages


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def _text_bytes(raw: bytes, where: str) -> bytes:
    """UTF-8 bytes for pandas, decoded line by line when the file is not plain ASCII."""
    if raw.isascii():
        return raw
    return "\n".join(decode_lines(raw, where, expected=UTF8).lines).encode("utf-8")


def _pick_columns(found: list[str], options: LoadOptions, where: str) -> dict[str, str | None]:
    """Role -> column name (None for an absent optional column)."""
    chosen: dict[str, str | None] = {}
    for role in ("user", "item", "rating", "timestamp"):
        flag = getattr(options, f"{role}_column")
        if flag is not None:
            if flag not in found:
                raise DataError(
                    f"no column {flag!r} (--{role}-column); the columns are {found}", path=where
                )
            chosen[role] = flag
            continue
        chosen[role] = next((c for c in COLUMN_DEFAULTS[role] if c in found), None)
        if chosen[role] is None and role in ("user", "item"):
            raise DataError(
                f"no {role} column: looked for {list(COLUMN_DEFAULTS[role])}, the columns are "
                f"{found}; name it with --{role}-column",
                path=where,
            )
    return chosen


def _read_text(path: Path, options: LoadOptions) -> tuple[dict[str, Any], Locate]:
    where = str(path)
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    data = _text_bytes(raw, where)
    sep = _separator(path)
    try:
        found = list(pd.read_csv(io.BytesIO(data), sep=sep, nrows=0).columns)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read the header: {exc}", path=where) from None
    chosen = _pick_columns(found, options, where)
    names = {role: c for role, c in chosen.items() if c is not None}
    dtypes = {c: str for c in names.values()}

    def locate(row: int) -> str:
        return f"{where}, line {line_of_row(data, row, header=True)}"

    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            usecols=list(names.values()),
            dtype=dtypes,  # type: ignore[arg-type]
            na_filter=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse the file: {exc}", path=where) from None
    return {role: frame[c].to_numpy() for role, c in names.items()}, locate


def _import_pyarrow_parquet() -> Any:
    try:
        return importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise DataError(f"reading Parquet needs pyarrow: {_PARQUET_HINT}") from None


def _read_parquet(path: Path, options: LoadOptions) -> tuple[dict[str, Any], Locate]:
    where = str(path)
    pq = _import_pyarrow_parquet()
    try:
        found = list(pq.read_schema(path).names)
        chosen = _pick_columns(found, options, where)
        names = {role: c for role, c in chosen.items() if c is not None}
        table = pq.read_table(path, columns=list(names.values()))
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises its own types for broken files
        raise DataError(f"cannot read the Parquet file: {exc}", path=where) from None
    columns = {role: table.column(c).to_numpy(zero_copy_only=False) for role, c in names.items()}
    return columns, lambda row: f"{where}, row {row + 1}"


def _ids(values: np.ndarray, role: str, options: LoadOptions, locate: Locate) -> np.ndarray:
    """int64 ids, or text ids (object array of str), as `--id-type` and the values say."""
    if values.dtype.kind in "iu" and options.id_type != "str":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        raise DataError(
            f"{locate(0).rsplit(',', 1)[0]}: the {role} column holds decimal numbers; ids are "
            "integers or text"
        )
    # Missing values (None, NaN) get their own code, and are then refused as empty ids.
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    texts = ["" if pd.isna(u) else str(u).strip() for u in uniques]
    for k, text in enumerate(texts):
        why = id_problem(text)
        if why:
            row = int(np.argmax(codes == k))
            raise DataError(f"{locate(row)}: {role} id {text!r} cannot be an id: {why}")
    if options.id_type == "str":
        numeric = False
    elif options.id_type == "int":
        for k, text in enumerate(texts):
            if decimal_int(text) is None:
                row = int(np.argmax(codes == k))
                raise DataError(
                    f"{locate(row)}: {role} id {text!r} is not an integer within int64 "
                    "(--id-type int); use --id-type str or auto"
                )
        numeric = True
    else:
        numeric = all(is_canonical_int(t) for t in texts)
    if numeric:
        return np.array([decimal_int(t) for t in texts], np.int64)[codes]
    return np.array(texts, dtype=object)[codes]


def _ratings(values: np.ndarray, locate: Locate) -> np.ndarray:
    if values.dtype.kind in "iuf":
        numbers = values.astype(np.float64)
        bad = np.flatnonzero(np.isnan(numbers))
    else:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(np.isnan(numbers))
    if bad.size:
        row = int(bad[0])
        raise DataError(f"{locate(row)}: rating {values[row]!r} is not a number")
    return numbers


def _timestamps(values: np.ndarray, locate: Locate) -> np.ndarray:
    """Seconds since the epoch, int64: integers as they are, or ISO 8601 date/times."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "M":
        return values.astype("datetime64[s]").astype(np.int64)
    series = pd.Series(values)
    numbers = pd.to_numeric(series, errors="coerce")
    if not numbers.isna().any():
        return np.floor(numbers.to_numpy(np.float64)).astype(np.int64)
    times = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{locate(row)}: timestamp {values[row]!r} is neither seconds since 1970 nor an "
            "ISO 8601 date/time (e.g. 2024-03-01T12:00:00Z)"
        )
    return (times.to_numpy().astype("datetime64[s]")).astype(np.int64)


def _read_items(
    path: Path, options: LoadOptions, numeric: bool
) -> dict[Any, tuple[str, tuple[str, ...]]]:
    """{item id: (title, genres)} from an items file with item, title and genres columns."""
    where = str(path)
    if not path.is_file():
        raise DataError("no such items file (--items)", path=where)
    decoded = decode_lines(path.read_bytes(), where, expected=UTF8)
    reader = csv.reader(decoded.lines, delimiter=_separator(path))
    header = [h.strip() for h in next(reader, [])]
    item_col = options.item_column or next(
        (c for c in COLUMN_DEFAULTS["item"] if c in header), None
    )
    if item_col not in header or "title" not in header:
        raise DataError(
            f"an items file needs an item column ({options.item_column or 'item'}) and a "
            f"'title' column (and optionally 'genres'); its columns are {header}",
            path=where,
            line=1,
        )
    i_item, i_title = header.index(item_col), header.index("title")
    i_genres = header.index("genres") if "genres" in header else None
    genres = GenreMapper(where)
    catalog: dict[Any, tuple[str, tuple[str, ...]]] = {}
    first_line: dict[Any, int] = {}
    titles = []
    for fields in reader:
        number = reader.line_num
        if not "".join(fields).strip():
            continue
        if len(fields) != len(header):
            raise DataError(
                f"malformed line: expected {len(header)} fields, got {len(fields)} (quote "
                "titles that hold the separator)",
                path=where,
                line=number,
            )
        text = fields[i_item].strip()
        key: Any = decimal_int(text) if numeric else text
        if key is None:
            raise DataError(
                f"item id {text!r} is not an integer, but the interactions' item ids are",
                path=where,
                line=number,
            )
        if key in catalog:
            raise DataError(
                f"item {text!r} is listed twice (first at line {first_line[key]})",
                path=where,
                line=number,
            )
        listed = fields[i_genres].split("|") if i_genres is not None else []
        catalog[key] = (fields[i_title], genres(listed))
        first_line[key] = number
        titles.append((number, fields[i_title]))
    genres.warn()
    warn_control_chars(where, titles, what="title")
    return catalog


def read_interactions(path: str | Path, options: LoadOptions) -> Interactions:
    """Read a generic interactions file (and `options.items`) into rows; see the module doc."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError("no such interactions file", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        columns, locate = _read_parquet(path, options)
    else:
        columns, locate = _read_text(path, options)
    if len(columns["user"]) == 0:
        raise DataError("the file has no rows, so there is nothing to fit", path=path)
    users = _ids(columns["user"], "user", options, locate)
    items = _ids(columns["item"], "item", options, locate)
    ratings = _ratings(columns["rating"], locate) if "rating" in columns else None
    stamps = _timestamps(columns["timestamp"], locate) if "timestamp" in columns else None
    catalog = None
    if options.items:
        catalog = _read_items(Path(options.items).expanduser(), options, items.dtype.kind == "i")
        missing = len(set(pd.unique(items)) - set(catalog))
        if missing:
            warnings.warn(
                f"{options.items}: {missing} item(s) of {path.name} have no row here; their "
                "title is their id and they have no genre",
                DataWarning,
                stacklevel=2,
            )
    return Interactions(
        source=f"interactions:{path}",
        users=users,
        items=items,
        catalog=catalog,
        ratings=ratings,
        timestamps=stamps,
        report={"release": "interactions"},
    )
