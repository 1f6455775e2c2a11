"""Public ids of users and movies: text, the same in the data, the store and the API.

A MovieLens id is its decimal text ("405"); a generic source keeps its own ids
("tt0111161"). Every id must be usable as one URL path segment (`/recommend/{id}`), so it is
1 to `MAX_ID_LENGTH` characters with no `/`, no control character (Unicode category Cc) and
no white space at either end. `ID_PATTERN` says the same as a regular expression (for the
OpenAPI schema). Numeric ids are decimal integers within int64.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ID_PATTERN",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ID_LENGTH",
    "decimal_int",
    "id_problem",
    "is_canonical_int",
]

MAX_ID_LENGTH = 256
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Characters never in an id: '/' and the control characters (category Cc).
_NEVER = r"/\x00-\x1f\x7f-\x9f"
# White space that is not a control character (what str.strip() removes besides Cc).
_SPACE = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
ID_PATTERN = f"^[^{_NEVER}{_SPACE}](?:[^{_NEVER}]*[^{_NEVER}{_SPACE}])?$"
_ID = re.compile(ID_PATTERN)
_DECIMAL = re.compile(r"-?[0-9]+")
_CANONICAL = re.compile(r"-?(?:0|[1-9][0-9]*)")


def id_problem(text: str) -> str | None:
    """Why `text` cannot be a public id (None when it can)."""
    if not text:
        return "it is empty"
    if len(text) > MAX_ID_LENGTH:
        return f"it has {len(text)} characters, more than {MAX_ID_LENGTH}"
    if "/" in text:
        return "it contains '/', which cannot stand in a URL path segment"
    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"it contains the control character {char!r}"
    if not _ID.fullmatch(text):
        return "it starts or ends with white space"
    return None


def decimal_int(text: str) -> int | None:
    """The integer written as plain decimal digits with an optional '-' and within int64
    (leading zeros allowed, as GroupLens files may have them); None otherwise."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def is_canonical_int(text: str) -> bool:
    """True when `text` is exactly how its int64 value prints (no sign '+', no leading
    zeros): then the id survives a round trip through an integer unchanged."""
    return bool(_CANONICAL.fullmatch(text)) and decimal_int(text) is not None
