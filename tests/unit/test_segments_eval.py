"""The Python evaluator's parser that the property tests use (tests/_segments_eval.py)."""

from __future__ import annotations

from _segments_eval import parse_node


def test_a_tree_that_shares_a_sub_tree_parses() -> None:
    # Hypothesis can hand the same list or dict object to two places of one tree; written as
    # YAML aliases, the loader (which refuses aliases) would reject a valid condition.
    shared = [{"field": "loyalty_points", "op": "gte", "value": 1}]
    node = parse_node({"any": [{"all": shared}, {"not": {"all": shared}}]})
    assert node is not None
