"""Seed derivation and the seeded call, in this process (no pool)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskpool
from taskpool._runtime.attempt import ITEM_INDEX, JobKind, call
from taskpool._runtime.seeding import MAP, SUBMIT, item_seed


def test_derivation_is_stable() -> None:
    # Pinned: a change here changes every seeded program's numbers, so it must be deliberate.
    assert item_seed((42, MAP, 0, 0)) == 4032407905111463678
    assert item_seed((42, MAP, 0, 5)) == 12699772724962729365
    assert item_seed((2**100, SUBMIT, 7, 0)) == 7087925989638037678


@given(st.integers(0, 2**70), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 500))
def test_an_items_seed_depends_on_its_index_not_its_chunk(
    root: int, number: int, first: int, offset: int
) -> None:
    assert item_seed((root, MAP, number, first), offset) == item_seed(
        (root, MAP, number, first + offset)
    )
    assert 0 <= item_seed((root, MAP, number, first)) < 2**64
    assert item_seed((root, MAP, number, first)) != item_seed((root, SUBMIT, number, first))


def _seed_and_draw(x: int) -> tuple[int, float, float]:
    return taskpool.job_seed(), taskpool.job_rng().random(), random.random()


def test_a_seeded_chunk_gives_each_item_its_own_seed_and_leaves_none_current() -> None:
    key = (1, MAP, 0, 10)
    chunk = call(_seed_and_draw, JobKind.CHUNK, [0, 1, 2], {}, key)
    alone = [call(_seed_and_draw, JobKind.CALL, (i,), {}, (1, MAP, 0, 10 + i)) for i in range(3)]
    assert chunk == alone
    assert [seed for seed, _, _ in chunk] == [item_seed(key, i) for i in range(3)]
    with pytest.raises(RuntimeError, match="running no job"):
        taskpool.job_seed()


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise ValueError(x)
    return x


def test_a_failing_item_of_a_seeded_chunk_is_located() -> None:
    with pytest.raises(ValueError, match="2") as info:
        call(_fail_on_two, JobKind.CHUNK, [0, 1, 2, 3], {}, (1, MAP, 0, 0))
    assert getattr(info.value, ITEM_INDEX) == 2


def test_job_rng_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match='"random" or "numpy"'):
        taskpool.job_rng("torch")  # type: ignore[call-overload]
