"""CPU steal (loadtest/cpu_steal.py): the share of this machine's CPU time its hypervisor gave other guests during a
step, read from /proc/stat, and how capacity.md reports it."""

from __future__ import annotations

import sys

import pytest

from mtserve.loadtest import cpu_steal
from mtserve.loadtest.capacity_report import steal_lines

# two readings 10 s apart on a 2-CPU guest (USER_HZ 100: 2,052 ticks counted), 616 of them stolen: /proc/stat as it was
# here during a --short search
BEFORE = "cpu  627835 9962 68400 325558 1631 0 2215 4118 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
AFTER = "cpu  628879 9962 68545 325798 1631 0 2222 4734 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"


def test_the_stolen_share_between_two_readings(tmp_path):
    (tmp_path / "before").write_text(BEFORE)
    (tmp_path / "after").write_text(AFTER)
    before, after = cpu_steal.read(tmp_path / "before"), cpu_steal.read(tmp_path / "after")
    assert before == (627835 + 9962 + 68400 + 325558 + 1631 + 0 + 2215 + 4118, 4118)
    assert cpu_steal.share(before, after) == pytest.approx(616 / 2052)
    assert cpu_steal.share(before, before) is None  # no time passed
    assert cpu_steal.share(None, after) is None


def test_no_steal_column_or_no_file_reads_as_unknown(tmp_path):
    (tmp_path / "old").write_text("cpu  1 2 3 4\n")  # a kernel before 2.6.11 had no steal column
    assert cpu_steal.read(tmp_path / "old") is None
    assert cpu_steal.read(tmp_path / "missing") is None
    (tmp_path / "empty").write_text("")
    assert cpu_steal.read(tmp_path / "empty") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_this_machine_reads():
    total, stolen = cpu_steal.read()
    assert total > 0 and 0 <= stolen <= total


def test_capacity_md_says_how_much_was_stolen_and_where_most():
    steps = [{"extra": {"cpu_steal": v}} for v in (0.02, 0.31, 0.19)] + [{"extra": {}}]
    text = " ".join(steal_lines(steps))
    assert "median 19%" in text and "the most 31% (step 2)" in text
    assert steal_lines([{"extra": {"cpu_steal": None}}, {}]) == []
