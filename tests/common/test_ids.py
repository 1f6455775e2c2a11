"""The id rules: `id_problem` and the OpenAPI pattern say the same thing."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from common.ids import ID_PATTERN, decimal_int, id_problem, is_canonical_int

_PATTERN = re.compile(ID_PATTERN)


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_the_schema_pattern_matches_exactly_the_ids_the_server_takes(text):
    assert (_PATTERN.fullmatch(text) is not None) == (id_problem(text) is None)
    if _PATTERN.match(text) is None:  # what the API refuses, a loaded id never is
        assert id_problem(text) is not None


def test_examples():
    for good in ("405", "-5", "tt0111161", "a b", "zoë", "9" * 256):
        assert id_problem(good) is None
    for bad, why in [
        ("", "empty"), ("a/b", "'/'"), (" 1", "white space"), ("1\u3000", "white space"),
        ("a\tb", "control character"), ("x\x85", "control character"), ("9" * 257, "257"),
    ]:  # fmt: skip
        assert why in id_problem(bad)
    assert decimal_int("007") == 7 and decimal_int(str(2**63)) is None
    assert decimal_int("1e3") is None and decimal_int("+1") is None
    assert is_canonical_int("-42") and not is_canonical_int("007") and not is_canonical_int("-0x1")
