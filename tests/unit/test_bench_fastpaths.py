"""The hot-path shortcuts ``make bench`` motivated give exactly the answers of the slow paths they replace."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import normalize as normalize_module
from ingest.normalize import depth_exceeds

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=40,
)


def reference_depth(value: Any) -> int:
    """Nesting depth by definition: a container is one level more than its deepest child container."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES, st.integers(min_value=1, max_value=8))
def test_depth_exceeds_agrees_with_the_definition(value: Any, max_depth: int) -> None:
    # A scalar counts as level 1 only at the top (as the original traversal counted it).
    depth = reference_depth(value) if isinstance(value, dict | list) else 1
    assert depth_exceeds(value, max_depth) is (depth > max_depth)


def test_the_recursive_walk_and_the_stack_walk_agree_at_the_boundary(monkeypatch: Any) -> None:
    # GIVEN values nested exactly at, and one past, the limit
    limit = 50
    at_limit: Any = 0
    for _ in range(limit):
        at_limit = [at_limit]
    past = {"k": at_limit}
    for recursive_max in (10_000, 0):  # WHEN the fast recursive walk is used, then the stack walk
        monkeypatch.setattr(normalize_module, "_RECURSIVE_MAX_DEPTH", recursive_max)
        # THEN both draw the line in the same place
        assert not depth_exceeds(at_limit, limit)
        assert depth_exceeds(past, limit)


def test_a_limit_past_the_recursive_range_still_works_on_deep_values() -> None:
    value: Any = 0
    for _ in range(3000):  # deeper than Python's recursion limit
        value = [value]
    assert depth_exceeds(value, 2999)
    assert not depth_exceeds(value, 3000)


def test_server_ids_are_canonical_uuidv7_text() -> None:
    # new_event_id formats the UUID text itself: it must be exactly what the uuid module would print.
    import uuid

    from core.ids import event_id_time_ms, new_event_id

    for _ in range(2000):
        text = new_event_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert event_id_time_ms(text) is not None
