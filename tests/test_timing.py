import pytest

from course_utils.timing import Timing, time_call, time_once


def test_counts_runs_and_orders_percentiles():
    calls = []
    timing = time_call(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 1 + 2 + 5
    assert isinstance(timing, Timing) and timing.repeats == 5
    assert 0 <= timing.p10_ms <= timing.median_ms <= timing.p90_ms
    assert set(timing.as_dict()) == {"repeats", "median_ms", "p10_ms", "p90_ms", "first_ms"}
    assert "median" in str(timing)


def test_synchronize_is_called_around_every_timed_run():
    syncs = []
    time_call(lambda: None, warmup=0, repeats=3, synchronize=lambda: syncs.append(1))
    assert len(syncs) == 2 + 1 + 3


def test_time_once_returns_the_result():
    result, ms = time_once(lambda: 42)
    assert result == 42 and ms >= 0


def test_repeats_must_be_positive():
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)
