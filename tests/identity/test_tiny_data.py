"""Resolve on data too small or too distinct for Splink to learn from still gives customers."""

from __future__ import annotations

import duckdb

from cdp.config import Settings
from identity import resolve
from tests.identity.lake import write_batch

PEOPLE = [("Mehmet", "Yılmaz", "01/07/1980"), ("Ayşe", "Kaya", "12/03/1983"),
          ("Zeynep", "Demir", "05/05/2005"), ("Ali", "Acar", "01/01/2001"),
          ("Veli", "Şahin", "02/02/1972"), ("Selin", "Çelik", "04/04/1990")]


def test_strangers_only_no_deterministic_matches(settings: Settings) -> None:
    # No two records share an email, phone or name + birth date: the deterministic rules find
    # no match, so Splink's prior estimate is 0 (which used to crash training).
    write_batch(settings, "loyalty_members", [
        dict(member_id=f"L{i}", card_number=str(1000 + i), first_name=first, last_name=last,
             birth_date=born, email=f"person{i}@example.com", mobile=f"0532 111 11 {10 + i}")
        for i, (first, last, born) in enumerate(PEOPLE)])
    summary = resolve(settings)
    assert summary.ok
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        customers = con.execute(
            "select count(distinct customer_id) from identity.identity_clusters").fetchall()[0][0]
    assert customers == len(PEOPLE)


def test_a_raw_file_of_an_uncommitted_batch_is_not_resolved(settings: Settings) -> None:
    from cdp.lake import load_log_path

    write_batch(settings, "loyalty_members", [
        dict(member_id="L1", first_name="Mehmet", last_name="Yılmaz", birth_date="01/07/1980",
             email="mehmet@example.com")])
    # an ingest that crashed before committing leaves a raw file with no load-log entry
    leftover = write_batch(settings, "loyalty_members", [
        dict(member_id="L2", first_name="Ayşe", last_name="Kaya", birth_date="12/03/1983",
             email="ayse@example.com")])
    load_log_path(settings, leftover).unlink()
    assert resolve(settings).figures["rows_in"] == {"loyalty_members": 1}
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        ids = con.execute("select source_record_id from identity.identity_clusters").fetchall()
    assert ids == [("L1",)]
