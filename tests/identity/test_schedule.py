"""Scheduled resolves in `auto` mode: incremental between full runs, full when one is due."""

from __future__ import annotations

import json
from datetime import timedelta

from cdp.config import Settings
from identity.schedule import (
    FINGERPRINT_FILE,
    MODEL_FILE,
    choose_mode,
    last_full_run,
    resolve_in_mode,
)
from identity.state import read_last_run
from identity.store import artefacts_dir
from tests.identity.lake import write_batch
from tests.identity.test_tiny_data import PEOPLE


def _land(settings: Settings, first: int, count: int) -> None:
    write_batch(settings, "loyalty_members", [
        dict(member_id=f"L{i}", card_number=str(1000 + i), first_name=PEOPLE[i % 6][0],
             last_name=PEOPLE[i % 6][1], birth_date=PEOPLE[i % 6][2],
             email=f"person{i}@example.com")
        for i in range(first, first + count)])


def test_auto_mode_chooses_full_until_incremental_is_valid(settings: Settings) -> None:
    _land(settings, 0, 6)
    assert choose_mode(settings).reason == "no previous full run"
    first = resolve_in_mode(settings, "auto")
    assert first.figures["mode"] == "full"
    assert (artefacts_dir(settings) / FINGERPRINT_FILE).exists()

    _land(settings, 6, 3)  # a new batch: linked incrementally
    second = resolve_in_mode(settings, "auto")
    assert second.figures["mode"] == "incremental"
    assert second.figures["new_batches"] == 1
    assert any(note.startswith("incremental resolve: full run due after")
               for note in second.notes)

    # a full run falls due with time ...
    last_full = last_full_run(settings)
    assert last_full is not None
    later = last_full + timedelta(days=settings.identity.full_resolve_every_days, seconds=1)
    assert choose_mode(settings, now=later).mode == "full"
    assert choose_mode(settings, now=later - timedelta(seconds=2)).mode == "incremental"
    # ... when the identity settings change (the saved model was made under the old ones) ...
    stricter = settings.model_copy(update={"identity": settings.identity.model_copy(
        update={"match_threshold": 0.99})})
    assert choose_mode(stricter).reason == ("the identity configuration changed since the "
                                            "last full run")
    # ... (not for the engine: incremental runs work on Spark too) ...
    spark = settings.model_copy(update={"engine": "spark"})
    assert choose_mode(spark).mode == "incremental"
    # ... and when the saved model is gone
    (artefacts_dir(settings) / MODEL_FILE).unlink()
    assert choose_mode(settings).reason == "no saved Splink model"


def test_scheduled_mode_full_always_runs_full(settings: Settings) -> None:
    assert settings.identity.scheduled_mode == "full"  # the shipped default
    _land(settings, 0, 6)
    resolve_in_mode(settings)
    again = resolve_in_mode(settings)
    assert again.figures["mode"] == "full"
    auto = settings.model_copy(update={"identity": settings.identity.model_copy(
        update={"scheduled_mode": "auto"})})
    assert resolve_in_mode(auto).figures["mode"] == "incremental"


def test_the_run_log_names_who_asked_for_each_run(settings: Settings) -> None:
    """A scheduler finds its own run by trigger (the Spark DAG's publish does), not by time:
    a run someone else started in the meantime is not taken for it."""
    _land(settings, 0, 6)
    resolve_in_mode(settings, "full", trigger="airflow:cdp_identity/run-1")
    _land(settings, 6, 3)
    resolve_in_mode(settings, "incremental")  # `cdp resolve --incremental` by hand, later

    mine = read_last_run(settings, trigger="airflow:cdp_identity/run-1")
    assert mine is not None and mine["mode"] == "full"
    assert json.loads(mine["figures"])["trigger"] == "airflow:cdp_identity/run-1"
    last = read_last_run(settings)
    assert last is not None and last["mode"] == "incremental"
    assert "trigger" not in json.loads(last["figures"])
    assert read_last_run(settings, trigger="airflow:cdp_identity/run-2") is None
