"""A short soak of the real daemon (issue 15); ``make soak`` runs the full one (500 photos)."""

from __future__ import annotations

from soak import SoakPlan, run_soak


def test_short_soak_every_good_photo_once_nothing_outside_nothing_left(tmp_path):
    figures = run_soak(tmp_path, SoakPlan(photos=30, writers=4, daemon_kills=2, worker_kills=2, seed=1))
    assert figures["violations"] == []
    assert figures["good_photos_ok_once"] + figures["good_photos_ok_report_but_completion_line_lost_to_a_kill"] \
        == figures["good_photos"]
    assert figures["daemon_kills"] == 2 and figures["worker_kills"] == 2 and figures["subfolder_swapped"]
    assert figures["corrupt_files"] >= 1 and figures["fifos_and_links_with_failed_report"] >= 2
