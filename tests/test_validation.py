"""The one rule for numbers (vjgan.validation) and the command line's numeric options."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from vjgan.cli import main
from vjgan.errors import UserError
from vjgan.validation import InvalidSetting, Number, check_fields, cli_number, number


@pytest.mark.parametrize("rule,value,admitted", [
    (Number(0, 1), 0, True), (Number(0, 1), 1, True), (Number(0, 1), 1.0000001, False),
    (Number(0, 1, low_open=True), 0, False), (Number(0, 1, high_open=True), 1, False),
    (Number(0, 1), math.nan, False), (Number(), math.inf, False), (Number(), -math.inf, False),
    (Number(), True, False), (Number(), "1", False), (Number(), None, False), (Number(), [1], False),
    (Number(0, 10, whole=True), 3.0, True), (Number(0, 10, whole=True), 3.5, False),
    (Number(0, 2**32 - 1, whole=True), 10**30, False), (Number(whole=True), 10**400, True),
    (Number(low=0), -1e-300, False), (Number(high=0), 5e-324, False),
])
def test_number_rule(rule: Number, value: object, admitted: bool) -> None:
    assert (rule.problem(value) is None) == admitted


def test_messages_name_the_key_the_range_and_the_value() -> None:
    with pytest.raises(InvalidSetting) as info:
        Number(0.25, 4096, unit="beats").check(math.nan, "keyframes.beats_per_keyframe")
    assert str(info.value) == "keyframes.beats_per_keyframe must be a number in [0.25, 4096] beats, got nan"
    assert Number(0, 2**32 - 1, whole=True).problem(-5) == "must be a whole number in [0, 4294967295], got -5"
    assert Number(0, 30, low_open=True, why="can be raised").problem(0) == "must be a number in (0, 30], got 0 (can be raised)"
    assert Number(low=1).problem("x" * 100).endswith("got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...")
    assert isinstance(info.value, UserError)


def test_check_fields_converts_and_reports_each_item() -> None:
    @dataclass(frozen=True)
    class Settings:
        speed: float = number(Number(0, 2), 1.0)
        count: int = number(Number(0, 9, whole=True), 1)
        seeds: tuple = number(Number(0, 9, whole=True), (1,), max_items=3)

        def __post_init__(self) -> None:
            check_fields(self, "s")

    s = Settings(speed=2, count=4.0, seeds=[1, 2.0])
    assert (s.speed, s.count, s.seeds) == (2.0, 4, (1, 2)) and type(s.speed) is float and type(s.count) is int
    with pytest.raises(InvalidSetting, match=r"s\.seeds\[1\] must be a whole number in \[0, 9\], got 1.5"):
        Settings(seeds=[1, 1.5])
    with pytest.raises(InvalidSetting, match=r"s\.seeds holds 4 values \(at most 3\)"):
        Settings(seeds=[1, 2, 3, 4])
    with pytest.raises(InvalidSetting, match=r"s\.seeds must be a list of numbers"):
        Settings(seeds="123")


def test_cli_number_parses_and_refuses() -> None:
    import argparse

    whole = cli_number(Number(1, 10, whole=True))
    assert whole("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="got 2.5"):
        whole("2.5")
    with pytest.raises(argparse.ArgumentTypeError, match="got 'ten'"):
        whole("ten")
    assert cli_number(Number(0, 1))("0.5") == 0.5


@pytest.mark.parametrize("args,option", [
    (["live", "--min-fps", "0"], "--min-fps"),
    (["live", "--min-fps", "nan"], "--min-fps"),
    (["live", "--min-fps", "-24"], "--min-fps"),
    (["live", "--duration", "0"], "--duration"),
    (["live", "--duration", "inf"], "--duration"),
    (["live", "--gain", "nan"], "--gain"),
    (["render", "a.wav", "--out", "a.mp4", "--seed", "-5"], "--seed"),
    (["render", "a.wav", "--out", "a.mp4", "--seed", "1.5"], "--seed"),
    (["render", "a.wav", "--out", "a.mp4", "--seed", "99999999999"], "--seed"),
    (["render", "a.wav", "--out", "a.mp4", "--seed", "five"], "--seed"),
    (["render", "a.wav", "--out", "a.mp4", "--quality", "nan"], "--quality"),
    (["render", "a.wav", "--out", "a.mp4", "--batch", "0"], "--batch"),
    (["render", "a.wav", "--out", "a.mp4", "--threads", "-2"], "--threads"),
    (["bench", "live", "--min-fps", "0"], "--min-fps"),
    (["bench", "--res", "0"], "--res"),
    (["bench", "--iters", "-1"], "--iters"),
    (["analyze", "--demo", "--duration", "nan"], "--duration"),
])
def test_bad_numeric_option_is_one_line(args: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vjgan {args[0]}: argument {option}: must be "), err


def test_the_command_line_refuses_min_fps_zero_before_starting() -> None:
    proc = subprocess.run([sys.executable, "-m", "vjgan", "live", "--min-fps", "0", "--demo"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("vjgan live: argument --min-fps: must be a number in [0.1, 1000] fps, got 0 "
                           "(see vjgan live --help)\n")
