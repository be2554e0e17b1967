"""``steward.gctune.paused``: batch work runs without cyclic collections, and the collector always comes back."""

from __future__ import annotations

import gc
import weakref

import pytest

from steward.gctune import parse_threshold, paused


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_collector_is_paused_inside_and_back_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused():
        assert not gc.isenabled()
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_a_nested_block_leaves_the_collector_to_the_block_that_paused_it():
    with paused():
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # still the outer block's pause
    assert gc.isenabled()


def test_cycles_made_while_paused_are_freed_by_the_next_collection():
    with paused():
        ref = weakref.ref(Node())
    gc.collect()
    assert ref() is None


def test_a_threshold_is_three_integers():
    assert parse_threshold("50000,50,100") == (50000, 50, 100)
    assert parse_threshold("") is None
    with pytest.raises(ValueError, match="three integers"):
        parse_threshold("10,2")
