"""The process backend's batching policy: in-flight limits from job durations, and shares of pending jobs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from taskpool._backends.process.batching import (
    MAX_INFLIGHT,
    MAX_KINDS,
    MIN_INFLIGHT,
    PIPELINE_BELOW,
    QUEUED_WORK,
    START_INFLIGHT,
    Batching,
    Batchings,
    inflight_limit,
    share,
    workers_to_start,
)

_durations = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


@given(_durations)
def test_the_limit_stays_within_its_bounds(average: float) -> None:
    limit = inflight_limit(average)
    assert MIN_INFLIGHT <= limit <= MAX_INFLIGHT
    if average < PIPELINE_BELOW:
        assert limit >= 2  # a short job keeps one queued behind it


@given(_durations, _durations)
def test_longer_jobs_never_get_a_higher_limit(a: float, b: float) -> None:
    short, long = sorted((a, b))
    assert inflight_limit(short) >= inflight_limit(long)


def test_the_limit_is_about_the_queued_work_it_allows() -> None:
    assert inflight_limit(QUEUED_WORK / 10) == 10
    assert inflight_limit(0.0) == MAX_INFLIGHT
    assert inflight_limit(10.0) == MIN_INFLIGHT
    assert inflight_limit(PIPELINE_BELOW / 2) == 2


def test_a_new_policy_starts_at_the_start_limit_and_waits_for_durations() -> None:
    batching = Batching()
    assert (batching.average, batching.limit) == (None, START_INFLIGHT)
    batching.observe([])
    assert (batching.average, batching.limit) == (None, START_INFLIGHT)


@given(st.lists(st.lists(_durations, max_size=5), min_size=1, max_size=10))
def test_the_average_stays_within_what_was_seen_and_sets_the_limit(
    rounds: list[list[float]],
) -> None:
    batching = Batching()
    seen: list[float] = []
    for durations in rounds:
        batching.observe(durations)
        seen.extend(durations)
    if not seen:
        assert batching.average is None
        return
    assert batching.average is not None
    assert min(seen) * (1 - 1e-9) <= batching.average <= max(seen) * (1 + 1e-9)
    assert batching.limit == inflight_limit(batching.average)


def test_the_limit_moves_with_durations() -> None:
    batching = Batching()
    batching.observe([1e-5] * 50)  # tiny jobs: many in flight
    assert 400 < batching.limit <= MAX_INFLIGHT
    batching.observe([1.0] * 50)  # long jobs: one at a time
    assert batching.limit == MIN_INFLIGHT
    batching.observe([0.001] * 200)  # 5 ms of queued work: about five
    assert 4 <= batching.limit <= 5


@given(
    st.integers(0, 5000),
    st.integers(-5, MAX_INFLIGHT),
    st.integers(0, 5000),
    st.none() | st.integers(1, 100),
)
def test_room_never_passes_the_limit_nor_the_tasks_left(
    inflight: int, limit: int, assigned: int, max_tasks: int | None
) -> None:
    batching = Batching()
    batching.limit = limit
    room = batching.room(inflight, assigned, max_tasks)
    assert room <= limit - inflight
    if max_tasks is not None:
        assert room <= max_tasks - assigned


@given(st.integers(0, 10_000), st.lists(st.integers(-3, 2000), min_size=1, max_size=8))
def test_shares_add_up_to_at_most_what_is_pending_and_fit_each_room(
    pending: int, rooms: list[int]
) -> None:
    left = pending
    shares = []
    for i, room in enumerate(rooms):
        n = share(left, len(rooms) - i, room)
        assert 0 <= n <= max(room, 0)
        shares.append(n)
        left -= n
    assert sum(shares) <= pending
    if all(room >= pending for room in rooms):
        # Room for everything: all of it goes, evenly.
        assert sum(shares) == pending
        assert max(shares) - min(shares) <= 1


@given(st.integers(1, 64), st.data())
def test_workers_start_only_for_jobs_that_would_wait(size: int, data: st.DataObject) -> None:
    running = data.draw(st.integers(0, size))
    idle = data.draw(st.integers(0, running))
    pending = data.draw(st.integers(0, 1000))
    n = workers_to_start(size, running, idle, pending)
    assert 0 <= n <= size - running
    assert n <= max(0, pending - idle)
    if pending - idle >= size - running:
        assert n == size - running


def test_each_kind_of_job_has_its_own_policy() -> None:
    batchings = Batchings()
    tiny, slow = (1, 0), (2, 0)
    assert batchings.of(tiny).limit == START_INFLIGHT
    batchings.observe(tiny, [1e-6] * 20)
    assert batchings.of(tiny).limit == MAX_INFLIGHT
    # A function not timed yet is not given the tiny jobs' limit.
    assert batchings.of(slow).limit == START_INFLIGHT
    batchings.observe(slow, [1.0])
    assert batchings.of(slow).limit == MIN_INFLIGHT
    assert batchings.of(tiny).limit == MAX_INFLIGHT
    # Reading the policy of an unseen kind records nothing.
    assert batchings.of((3, 1)).average is None


def test_the_policies_kept_are_bounded() -> None:
    batchings = Batchings()
    for key in range(MAX_KINDS + 10):
        batchings.observe((key, 0), [1e-6])
    assert batchings.of((0, 0)).average is None  # the oldest were forgotten
    assert batchings.of((MAX_KINDS + 9, 0)).limit == MAX_INFLIGHT
