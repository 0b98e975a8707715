"""`lab up` / `lab status`: pod counts add up the way `kubectl get pods -A` shows them."""

from __future__ import annotations

from novadiag.cli.lab import _pods_line


def test_crash_looping_pods_are_counted_once_under_their_reason():
    status = {"pods": {"Running": 36}, "waiting": {"CrashLoopBackOff": 4}}
    assert _pods_line(status) == ", 36 pods: 32 Running, 4 CrashLoopBackOff"


def test_other_phases_are_listed_as_they_are():
    status = {"pods": {"Running": 3, "Pending": 1, "Succeeded": 2}, "waiting": {}}
    assert _pods_line(status) == ", 6 pods: 3 Running, 1 Pending, 2 Succeeded"


def test_no_pods_is_an_empty_line():
    assert _pods_line({"pods": {}}) == ""
