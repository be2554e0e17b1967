"""The body parser's depth limit counts only real nesting: brackets inside strings, escaped quotes and
backslashes, strings beside strings never move it."""

import json
import random
from typing import Any

import pytest

from steward import jsonbody
from steward.errors import ValidationFailed


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _random_value(rng: random.Random, depth: int) -> Any:
    pieces = ["a", "[", "]", "{", "}", '"', "\\", ":", ",", '""', "\\\\", "ü"]
    roll = rng.random()
    if depth > 90 or roll < 0.3:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
    if roll < 0.65:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {"k" + rng.choice(pieces): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_depth_limit_agrees_with_the_parsed_depth_on_random_documents():
    rng = random.Random(18)
    refused = accepted = 0
    for _ in range(3000):
        value = _random_value(rng, 0)
        for _ in range(rng.choice([0, 0, 30, 60, 63, 64, 70])):
            value = [value] if rng.random() < 0.5 else {'x"]': value}
        raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        expected_refused = _depth(value) > jsonbody.MAX_DEPTH
        if expected_refused:
            with pytest.raises(ValidationFailed) as caught:
                jsonbody.loads(raw)
            assert caught.value.problems[0].code == "too_deep"
            refused += 1
        else:
            assert jsonbody.loads(raw) == value
            accepted += 1
    assert refused > 100 and accepted > 1000  # both sides of the limit were tried


def test_a_wide_body_with_bracketed_strings_is_not_too_deep():
    body = {"requests": [{"subject": "[" * 80, "asset": {"name": '"]"' * 5, "namespace": "{{"}} for _ in range(500)]}
    assert jsonbody.loads(json.dumps(body).encode()) == body
