"""The local classifier's agreement statistics (core/routing/agreement.py): the math and the bookkeeping.

The behaviour over real HTTP (auto mode deciding, demoting, surviving restarts, shared through
Redis) is in tests/test_auto_classifier.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from core.routing.agreement import (
    AgreementTracker,
    AutoPolicy,
    FileBackend,
    is_costly,
    samples_needed,
    serving,
    wilson_lower,
)


class Clock:
    """A hand-moved clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- the Wilson bound at the real defaults ------------------------------------------------------


def test_wilson_lower_bound_matches_known_values():
    # Reference values of the Wilson score interval (z = 1.96).
    assert wilson_lower(0, 0) == 0.0
    assert wilson_lower(10, 10) == pytest.approx(10 / (10 + 1.959963984540054 ** 2))
    assert wilson_lower(81, 100) == pytest.approx(0.7222, abs=1e-4)
    assert wilson_lower(50, 100) == pytest.approx(0.4038, abs=1e-4)
    assert wilson_lower(950, 1000) == pytest.approx(0.9347, abs=1e-4)


def test_at_the_default_bar_a_route_needs_about_125_agreeing_samples():
    # All agreeing: n / (n + z^2) >= 0.97 first holds at n = 125.
    assert wilson_lower(124, 124) < 0.97 <= wilson_lower(125, 125)
    assert samples_needed(0.97, 1) == 125
    # With the default minimum of 200 samples, the minimum wins...
    assert samples_needed(0.97, 200) == 200
    # ...and at 200 samples a route may miss at most 1 (2 misses take the bound under 0.97).
    assert wilson_lower(199, 200) >= 0.97 > wilson_lower(198, 200)
    # One costly miss counts three times: the route needs 290 samples (the README says so).
    tracker = _tracker(min_agreement=0.97, min_samples=200)
    tracker.observe("MODERATE", "ENRICH", "costly")
    for i in range(288):
        tracker.observe("MODERATE", "MODERATE", str(i))
    assert not tracker.promoted("MODERATE")
    tracker.observe("MODERATE", "SIMPLE", "the 290th")
    assert tracker.promoted("MODERATE")


def test_backend_level_agreement_and_costly_misses():
    assert serving("SIMPLE") == serving("MODERATE")  # both served by the primary: a mix-up costs nothing
    assert serving("COMPLEX") != serving("MODERATE") and serving("ENRICH") != serving("MODERATE")
    assert is_costly("SIMPLE", "COMPLEX") and is_costly("MODERATE", "ENRICH") and is_costly("ENRICH", "COMPLEX")
    assert not is_costly("COMPLEX", "SIMPLE")  # a needless escalation: dear, not costly in this sense
    assert not is_costly("SIMPLE", "MODERATE")


# --- promotion, demotion, costly misses, labels, the window ---------------------------------


def _tracker(**policy) -> AgreementTracker:
    return AgreementTracker(AutoPolicy(**policy), clock=Clock(), rng=random.Random(0))


def test_promotes_at_the_bar_and_demotes_on_the_first_sample_under_it():
    tracker = _tracker(min_agreement=0.97, min_samples=200, window=1000)
    for i in range(199):
        tracker.observe("SIMPLE", "MODERATE", f"s{i}")  # backend-level agreement
    assert not tracker.promoted("SIMPLE")  # 199 < 200 samples
    tracker.observe("SIMPLE", "SIMPLE", "s199")
    assert tracker.promoted("SIMPLE") and tracker.figures("SIMPLE")["agreement"] == 1.0
    tracker.observe("SIMPLE", "MODERATE", "x")  # still fine
    assert tracker.promoted("SIMPLE")
    misses = 0
    while tracker.promoted("SIMPLE"):
        tracker.observe("SIMPLE", "COMPLEX", f"m{misses}")
        misses += 1
    assert misses == 1  # one costly miss counts three times: 201 - 3 of 202 is under the bar
    assert tracker.figures("SIMPLE")["wilson_lower"] < 0.97


def test_a_costly_miss_weighs_more_than_a_needless_escalation():
    costly, needless = _tracker(min_samples=10), _tracker(min_samples=10)
    for i in range(300):
        costly.observe("SIMPLE", "SIMPLE", str(i))
        needless.observe("COMPLEX", "COMPLEX", str(i))
    for i in range(2):
        costly.observe("SIMPLE", "ENRICH", f"c{i}")  # would answer without search
        needless.observe("COMPLEX", "SIMPLE", f"n{i}")  # would send a greeting to xAI
    assert needless.promoted("COMPLEX") and not costly.promoted("SIMPLE")
    assert costly.figures("SIMPLE")["costly_misses"] == 2 and needless.figures("COMPLEX")["costly_misses"] == 0


def test_a_persons_label_counts_instead_of_the_llms_answer():
    tracker = _tracker(min_agreement=0.9, min_samples=30)
    for i in range(40):
        tracker.observe("ENRICH", "ENRICH", f"s{i}")
    assert tracker.promoted("ENRICH")
    for i in range(10):  # a person says these needed no search after all
        tracker.label(f"s{i}", "moderate")
    assert tracker.figures("ENRICH")["agreeing"] == 30
    assert not tracker.promoted("ENRICH")
    tracker.apply_labels({f"s{i}": "ENRICH" for i in range(10)} | {"unknown": "SIMPLE"})
    assert tracker.promoted("ENRICH") and "unknown" not in tracker.labels


def test_old_agreement_ages_out_of_the_window_and_by_age():
    tracker = _tracker(min_agreement=0.9, min_samples=30, window=50, max_age_s=3600)
    for i in range(50):
        tracker.observe("MODERATE", "COMPLEX", f"old{i}")
    for i in range(50):  # the window holds the latest 50 only
        tracker.observe("MODERATE", "SIMPLE", f"new{i}")
    assert tracker.figures("MODERATE")["samples"] == 50 and tracker.figures("MODERATE")["agreeing"] == 50
    assert tracker.promoted("MODERATE")
    tracker.clock.now += 7200  # type: ignore[attr-defined]
    tracker.age_out()
    assert tracker.figures("MODERATE")["samples"] == 0 and not tracker.promoted("MODERATE")


def test_audit_share_is_what_the_policy_says():
    tracker = _tracker(audit_share=0.05)
    share = sum(tracker.should_audit() for _ in range(20000)) / 20000
    assert 0.04 < share < 0.06
    assert not any(_tracker(audit_share=0.0).should_audit() for _ in range(1000))


def test_state_survives_a_restart_through_the_file(tmp_path: Path):
    path = tmp_path / "state" / "agreement.json"

    async def first_life() -> dict:
        tracker = AgreementTracker(AutoPolicy(min_agreement=0.9, min_samples=30), FileBackend(path))
        await tracker.start()
        for i in range(40):
            tracker.observe("SIMPLE", "SIMPLE", f"s{i}")
        tracker.label("s0", "SIMPLE")
        tracker.count_saved("SIMPLE")
        snapshot = tracker.snapshot()
        await tracker.aclose()
        return snapshot

    before = asyncio.run(first_life())
    assert before["routes"]["SIMPLE"]["promoted"] is True
    saved = json.loads(path.read_text())
    assert len(saved["samples"]["SIMPLE"]) == 40 and saved["labels"] == {"s0": "SIMPLE"}

    async def second_life() -> dict:
        tracker = AgreementTracker(AutoPolicy(min_agreement=0.9, min_samples=30), FileBackend(path))
        await tracker.start()
        snapshot = tracker.snapshot()
        await tracker.aclose()
        return snapshot

    after = asyncio.run(second_life())
    assert after["routes"]["SIMPLE"] == before["routes"]["SIMPLE"]  # promoted since the same time, 1 call saved


def test_a_broken_state_file_starts_empty(tmp_path: Path):
    path = tmp_path / "agreement.json"
    path.write_text("{not json")
    assert FileBackend(path).read() is None


def test_the_labels_file_is_read_when_it_changes(tmp_path: Path):
    labels = tmp_path / "labels.json"
    tracker = AgreementTracker(AutoPolicy(min_agreement=0.9, min_samples=5), labels_file=labels)
    for i in range(10):
        tracker.observe("COMPLEX", "COMPLEX", f"s{i}")
    assert tracker.read_labels_file() is None  # no file yet
    labels.write_text(json.dumps({"s1": {"expected_route": "simple", "rating": 1}, "s2": {"rating": 2}}))
    read = tracker.read_labels_file()
    assert read == {"s1": "SIMPLE"}
    tracker.apply_labels(read)
    assert tracker.figures("COMPLEX")["agreeing"] == 9
    assert tracker.read_labels_file() is None  # unchanged since


def test_snapshot_has_what_the_review_page_shows():
    tracker = _tracker(min_agreement=0.9, min_samples=30)
    for i in range(40):
        tracker.observe("SIMPLE", "SIMPLE", f"s{i}")
    tracker.count_saved("SIMPLE")
    route = tracker.snapshot()["routes"]["SIMPLE"]
    assert {"samples", "agreement", "wilson_lower", "promoted", "promoted_since", "llm_calls_saved",
            "costly_misses", "audits"} <= set(route)
    assert route["samples"] == 40 and route["promoted"] and route["llm_calls_saved"] == 1
    assert tracker.snapshot()["policy"]["agreeing_samples_needed"] == 35


def test_workers_of_one_host_pool_their_samples_in_the_file(tmp_path: Path):
    path = tmp_path / "agreement.json"

    async def two_workers() -> tuple[dict, dict]:
        policy = AutoPolicy(min_agreement=0.85, min_samples=20)
        first = AgreementTracker(policy, FileBackend(path, policy.window))
        second = AgreementTracker(policy, FileBackend(path, policy.window))
        for i in range(12):  # neither has enough samples alone
            first.observe("ENRICH", "ENRICH", f"a{i}")
            second.observe("ENRICH", "ENRICH", f"b{i}")
        first.count_saved("ENRICH")
        second.count_saved("ENRICH")
        assert not first.promoted("ENRICH") and not second.promoted("ENRICH")
        await first.tick()
        await second.tick()  # merges its 12 with the first's 12
        await first.tick()  # reads the second's back
        for tracker in (second, first, second):  # the promotion time converges on the first one written
            await tracker.tick()
        snapshots = first.snapshot(), second.snapshot()
        await first.aclose()
        await second.aclose()
        return snapshots

    first, second = asyncio.run(two_workers())
    for snapshot in (first, second):
        route = snapshot["routes"]["ENRICH"]
        assert route["samples"] == 24 and route["promoted"] and route["llm_calls_saved"] == 2
        assert snapshot["store"] == "file" and snapshot["shared"] is False
    assert first["routes"]["ENRICH"]["promoted_since"] == second["routes"]["ENRICH"]["promoted_since"]
    assert len(json.loads(path.read_text())["samples"]["ENRICH"]) == 24
