"""The line the show leaves when it ends (vjgan/live/report.py): a pure function of its counters."""

from vjgan.live.report import ShowReport


def test_the_report_says_rates_costs_and_alarms() -> None:
    line = ShowReport(seconds=20.0, frames=520, redraws=610, generation_ms=34.6, analysis_ms_mean=0.98,
                      analysis_ms_max=15.4, alarms=("AUDIO LOST (recovered)",)).line()
    assert line == ("played 20.0 s: 520 frames generated (26.0 a second, the last in 35 ms), output redrawn 610 "
                    "times (30.5 a second), sound analysis 0.98 ms a hop (at most 15.4 ms), "
                    "alarms: AUDIO LOST (recovered)")


def test_a_show_that_never_got_going_still_reports() -> None:
    line = ShowReport(seconds=0.0, frames=0, redraws=0, generation_ms=None, analysis_ms_mean=None,
                      analysis_ms_max=None).line()
    assert line == "played 0.0 s: 0 frames generated (0.0 a second), output redrawn 0 times (0.0 a second), no alarms"
