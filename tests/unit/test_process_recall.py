"""The worker's side of a recall (`taskpool._backends.process.recall`), with plain values for the shared ones."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from taskpool._backends.process import recall


@pytest.fixture
def values() -> Iterator[tuple[SimpleNamespace, SimpleNamespace]]:
    slot, asked = SimpleNamespace(value=0), SimpleNamespace(value=0)
    saved = list(recall._values)
    recall._values[:] = [slot, asked]
    try:
        yield slot, asked
    finally:
        recall._values[:] = saved
        recall.in_job[0] = False


def test_a_recall_of_the_running_job_raises_once(values: tuple[SimpleNamespace, ...]) -> None:
    slot, asked = values
    slot.value, asked.value = 5, 5
    with pytest.raises(recall.Recalled):
        recall.check_recall()
    assert asked.value == 0
    recall.check_recall()  # taken: nothing more


def test_a_recall_of_another_job_is_ignored(values: tuple[SimpleNamespace, ...]) -> None:
    slot, asked = values
    slot.value, asked.value = 6, 5
    recall.check_recall()
    assert asked.value == 5


def test_the_signal_interrupts_only_a_job_s_own_code(values: tuple[SimpleNamespace, ...]) -> None:
    slot, asked = values
    slot.value, asked.value = 7, 7
    recall._on_signal(0, None)  # between the start report and the job's code: left for check_recall
    assert asked.value == 7
    recall.in_job[0] = True
    with pytest.raises(recall.Recalled):
        recall._on_signal(0, None)


def test_recalled_is_not_an_exception_a_job_would_catch() -> None:
    assert not issubclass(recall.Recalled, Exception)
