import pytest

from course_utils.timing import (NOISE_LIMIT, VERDICTS, Timing, budget_runs, compare_timings, time_call,
                                 time_once, verdict)


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
    with pytest.raises(ValueError):
        time_call(lambda: None, min_repeats=0)


def test_budget_runs_keeps_everything_when_calls_are_cheap():
    assert budget_runs(first_ms=1.0, budget_s=10.0, warmup=3, repeats=20, min_repeats=3) == (3, 20)


def test_budget_runs_cuts_timed_runs_first_then_warmup():
    # 10 runs of 100 ms fit in 1 s: 3 warm-up runs are kept, 7 timed runs remain.
    assert budget_runs(first_ms=100.0, budget_s=1.0, warmup=3, repeats=20, min_repeats=3) == (3, 7)
    # 4 runs fit: the minimum of 3 timed runs and 1 warm-up run.
    assert budget_runs(first_ms=250.0, budget_s=1.0, warmup=3, repeats=20, min_repeats=3) == (1, 3)


def test_budget_runs_never_goes_below_the_minimum_nor_above_the_request():
    assert budget_runs(first_ms=1e6, budget_s=1.0, warmup=3, repeats=20, min_repeats=3) == (1, 3)
    assert budget_runs(first_ms=1e6, budget_s=1.0, warmup=0, repeats=2, min_repeats=3) == (0, 2)


def test_time_call_with_a_budget_reports_how_many_runs_were_timed():
    calls = []
    timing = time_call(lambda: calls.append(1), warmup=2, repeats=5, budget_s=1e-9, min_repeats=2)
    assert timing.repeats == 2
    assert len(calls) == 1 + 1 + 2


def test_spread_is_p90_over_p10():
    assert Timing(5, 10.0, 8.0, 12.0, 30.0).spread == pytest.approx(1.5)
    assert Timing(5, 0.0, 0.0, 0.0, 0.0).spread == float("inf")


def test_verdict_withholds_when_either_timing_is_noisy():
    quick, slow = Timing(9, 10.0, 9.5, 10.5, 20.0), Timing(9, 20.0, 19.0, 21.0, 40.0)
    noisy = Timing(9, 10.0, 5.0, 30.0, 40.0)
    assert verdict(quick, slow) == "faster" and verdict(slow, quick) == "slower"
    assert verdict(noisy, slow) == "too noisy" and verdict(slow, noisy) == "too noisy"
    assert verdict(noisy, slow, limit=10.0) == "no clear difference"
    assert verdict(Timing(9, 10.2, 9.6, 10.8, 20.0), quick) == "no clear difference"
    assert set(VERDICTS) == {"faster", "slower", "no clear difference", "too noisy"}
    assert NOISE_LIMIT == 1.5


def test_time_call_names_the_notebook_that_teaches_it():
    assert "05_speed_benchmark" in time_call.__doc__


def test_compare_timings_names_the_winner_or_withholds():
    quick, slow = Timing(9, 10.0, 9.5, 10.5, 20.0), Timing(9, 20.0, 19.0, 21.0, 40.0)
    text = compare_timings(quick, slow, ("ONNX Runtime", "PyTorch"))
    assert text == ("ONNX Runtime against PyTorch: faster (median 10.00 ms against 20.00 ms, "
                    "2.00x as fast).")
    noisy = compare_timings(Timing(9, 10.0, 5.0, 30.0, 40.0), slow)
    assert noisy.startswith("candidate against baseline: no conclusion") and "6.0" in noisy
    assert "faster" not in noisy
