"""The parts of erasure on small hand-made data: matching, keys, lookup, lake files, compaction."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from cdp import lake
from cdp.config import Settings
from cdp.erasure import Tombstones, forget, keys, store
from cdp.erasure.lakefiles import check_anonymisation
from cdp.erasure.matcher import RECORD
from cdp.erasure.warehouse import compact
from cdp.errors import CdpError
from cdp.ingest import ingest
from cdp.ingest.readers import Incoming

KEY = b"k" * 64
PHONE = "+905077897109"
EMAIL = "ayseyilmaz@gmail.com"


def _tombstones(**values: str) -> Tombstones:
    digests = {kind: {keys.digest(KEY, kind, value)} for kind, value in values.items()}
    return Tombstones(KEY, digests, "TR")


def test_identifiers_match_however_they_are_written() -> None:
    t = _tombstones(phone=PHONE, email=EMAIL,
                    record=keys.record_value("pos_transactions", "T1"))
    for phone in ("0507 789 71 09", "+90 (507) 789-7109", "905077897109", "05077897109"):
        assert t.identifier("phone", phone), phone
    assert not t.identifier("phone", "05077897108")
    for email in (" AYSE.YILMAZ+promo@GMAIL.com ", "ayseyilmaz@googlemail.com"):
        assert t.identifier("email", email), email
    assert not t.identifier("email", "ayse.yilmaz@yahoo.com")
    # free text: a quarantined CSV record, a JSON line, a phone inside a sentence
    assert t.text("pos_transactions", 'T9;31.02.2025 10:00;M1;;"Ayşe";0507 789 71 09;1,0', ";")
    assert t.text("call_center_tickets", '{"caller_number": "+90 507 789 71 09"}')
    assert t.text("call_center_tickets", "please call 0507 789 71 09 tomorrow")
    assert t.text("pos_transactions", "T1;bad")  # the record id itself
    assert not t.text("pos_transactions", "T2;31.02.2025;M1;;Ali;05321112233;1,0", ";")


def test_channel_matcher_reads_records_as_ingest_receives_them(settings: Settings) -> None:
    t = _tombstones(email=EMAIL, record=keys.record_value("web_orders", "W1"))
    matcher = t.for_channel(settings.channel("web_orders"), settings.identity.identifiers)
    names = list(settings.channel("web_orders").columns)

    def record(**values: str) -> Incoming:
        return Incoming(1, 2, [values.get(n) for n in names], "raw")

    assert matcher.incoming(record(order_id="W1"))
    assert matcher.incoming(record(order_id="W2", customer_email="Ayse.Yilmaz@gmail.com"))
    assert not matcher.incoming(record(order_id="W2", customer_email="ali@example.com"))
    assert matcher.incoming(Incoming(3, 4, None, "W3,not,valid,ayse.yilmaz@gmail.com"))


def test_ingest_fails_closed_without_the_tombstones_key(settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDP_ERASURE_KEY", raising=False)
    store.write_tombstones(settings, "E1", keys.key_check(KEY),
                           {"email": {keys.digest(KEY, "email", EMAIL)}})
    with pytest.raises(CdpError, match="key is missing"):
        ingest(settings)
    monkeypatch.setenv("CDP_ERASURE_KEY", "x" * 64)
    with pytest.raises(CdpError, match="not the key the tombstones were made with"):
        ingest(settings)
    monkeypatch.setenv("CDP_ERASURE_KEY", KEY.decode())
    loaded = Tombstones.load(settings)
    assert loaded is not None and loaded.identifier("email", "Ayse.Yilmaz@gmail.com")


def _identity(settings: Settings) -> None:
    """Two customers sharing one email; C2's phone is classed shared (a household phone)."""
    path = settings.resolved_paths.warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema identity")
        con.execute("create table identity.golden_profiles as select * from (values "
                    "('C1', 'ortak@example.com', '+905321111111', ['ortak@example.com'], "
                    "['+905321111111']), ('C2', 'ortak@example.com', '+905322222222', "
                    "['ortak@example.com'], ['+905322222222'])) "
                    "t(customer_id, email, phone, emails, phones)")
        con.execute("create table identity.identity_records as select * from (values "
                    "('web_orders:W1', 'C1', 'ortak@example.com', '+905321111111', null, null, "
                    "null), ('web_orders:W2', 'C2', 'ortak@example.com', '+905322222222', null, "
                    "null, null)) t(record_key, customer_id, email, phone, loyalty_id, "
                    "login_id, device_id)")
        con.execute("create table identity.identity_clusters as select * from (values "
                    "('web_orders', 'W1', 'C1', 'web_orders:W1'), "
                    "('web_orders', 'W2', 'C2', 'web_orders:W2')) "
                    "t(source, source_record_id, customer_id, record_key)")
        con.execute("create table identity.identity_identifiers as select * from (values "
                    "('email', 'ortak@example.com', 'shared', 2, 2), "
                    "('phone', '+905321111111', 'personal', 1, 1), "
                    "('phone', '+905322222222', 'shared', 2, 1)) "
                    "t(kind, value, class, people, records)")


def test_lookup_refuses_ambiguous_invalid_and_unknown_requests(settings: Settings) -> None:
    _identity(settings)
    with pytest.raises(CdpError, match=r"belongs to 2 customers \(C1, C2\)") as ambiguous:
        forget(settings, email=" ORTAK@example.com ")
    with pytest.raises(CdpError, match="not a valid email") as invalid:
        forget(settings, email="ortak-at-example.com")
    for error in (ambiguous, invalid):
        assert "ortak" not in str(error.value)  # the value given is never echoed
    with pytest.raises(CdpError, match="unknown customer id"):
        forget(settings, customer_ids=["C404"])
    with pytest.raises(CdpError, match="exactly one"):
        forget(settings, customer_ids=["C1"], phone="+905321111111")


def test_shared_identifiers_are_not_tombstoned(settings: Settings) -> None:
    _identity(settings)
    summary = forget(settings, customer_ids=["C2"])
    # C2's email and phone are shared: C2's record goes, but nobody else is blocked.
    assert summary.figures["tombstones"] == {RECORD: 1}
    assert any("shared" in note for note in summary.notes)
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        left = con.execute("select customer_id from identity.identity_clusters").fetchall()
        erased = con.execute("select customer_id from identity.erased_customers").fetchall()
    assert left == [("C1",)] and erased == [("C2",)]


def test_anonymisation_never_keeps_identity_columns(settings: Settings) -> None:
    settings.erasure.keep_anonymised = {"web_orders": ["order_total", "customer_email"]}
    with pytest.raises(CdpError, match="identity columns"):
        check_anonymisation(settings)
    settings.erasure.keep_anonymised = {"web_orders": ["order_total"]}
    with pytest.raises(CdpError, match="required column"):
        check_anonymisation(settings)


POS = ("TRX_NO;TRX_DATE;STORE_CODE;LOYALTY_CARD;CUST_NAME;CUST_PHONE;AMOUNT;CATEGORY;"
       "PAYMENT_TYPE\r\n"
       "T1;01.03.2025 10:00;M1;;Ayşe Yılmaz;+90 507 789 7109;10,50;home;NAKIT\r\n"
       "T2;01.03.2025 11:00;M1;;\"Ali\r\nVeli\";05321112233;20,00;home;KART\r\n"
       "T3;31.02.2025 12:00;M2;;Ayşe Y.;05077897109;5,00;toys;NAKIT\r\n"
       "T4;02.03.2025 09:30;M2;;Ayşe;0507 789 71 09;7,25;toys;KART\r\n")


def test_lake_quarantine_and_landing_are_purged_to_the_byte(settings: Settings) -> None:
    landing = settings.resolved_paths.landing / "pos_transactions"
    landing.mkdir(parents=True)
    path = landing / "pos_20250301.csv"
    path.write_bytes(POS.encode("cp1254"))
    first = ingest(settings).figures
    assert (first["rows_loaded"], first["rows_quarantined"]) == (3, 1)  # T3: 31 February

    summary = forget(settings, phone="0507 789 71 09")
    lake_counts = summary.figures["lake"]
    assert lake_counts["raw"] == {"files": 1, "rows_removed": 0, "rows_anonymised": 2}
    assert lake_counts["quarantine"]["rows_removed"] == 1
    assert lake_counts["landing"]["rows_removed"] == 3
    # landing: exactly the person's lines are gone; every other byte (CRLF, the quoted line
    # break, windows-1254) is as delivered
    expected = POS.split("\r\n")
    kept = "\r\n".join([expected[0], expected[2], expected[3]]) + "\r\n"
    assert path.read_bytes() == kept.encode("cp1254")
    # raw: the two sales stay for revenue, detached from the person
    (raw_file,) = lake.committed_raw_files(settings, "pos_transactions")
    rows = {r["AMOUNT"]: r for r in pq.ParquetFile(raw_file).read().to_pylist()}
    assert sorted(str(a) for a in rows) == ["10.50", "20.00", "7.25"]
    for amount in ("10.50", "7.25"):
        row = next(r for a, r in rows.items() if str(a) == amount)
        assert row["TRX_NO"].startswith("ERASED-")
        assert (row["CUST_NAME"], row["CUST_PHONE"], row["LOYALTY_CARD"]) == (None, None, None)
        assert row["STORE_CODE"] and row["TRX_DATE"]
    quarantine = lake.quarantine_dir(settings, "pos_transactions")
    assert all(pq.ParquetFile(q).metadata.num_rows == 0 for q in quarantine.rglob("*.parquet"))
    # the redacted landing file still counts as loaded; the original re-sent is erased
    again = ingest(settings).figures
    assert (again["files_loaded"], again["files_skipped"]) == (0, 1)
    # the same export re-sent with one more row: a new file, whose erased rows are dropped
    extra = "T5;03.03.2025 10:00;M1;;Can;05323334455;1,00;home;NAKIT\r\n"
    (landing / "pos_resent.csv").write_bytes((POS + extra).encode("cp1254"))
    resent = ingest(settings).figures
    assert (resent["rows_received"], resent["rows_erased"], resent["rows_loaded"],
            resent["rows_quarantined"]) == (5, 3, 2, 0)
    assert (landing / "pos_resent.csv").read_bytes() == (kept + extra).encode("cp1254")


def test_an_interrupted_erasure_is_finished_by_running_it_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp.erasure import run

    landing = settings.resolved_paths.landing / "pos_transactions"
    landing.mkdir(parents=True)
    path = landing / "pos_20250301.csv"
    path.write_bytes(POS.encode("cp1254"))
    ingest(settings)
    real = run.purge_landing

    def crash(step: run.Pass, loaded: dict[str, str]) -> None:
        if step.apply:
            raise RuntimeError("power cut")
        real(step, loaded)

    monkeypatch.setattr(run, "purge_landing", crash)
    with pytest.raises(RuntimeError):
        forget(settings, phone="+90 507 789 7109")
    (request,) = store.read_requests(settings)
    assert request.status == "pending"
    assert b"7109" in path.read_bytes()  # the landing file was not reached
    monkeypatch.setattr(run, "purge_landing", real)
    summary = forget(settings, phone="05077897109")
    assert summary.figures["mode"] == "resumed"
    assert summary.figures["lake"]["landing"]["rows_removed"] == 3
    assert "raw" not in summary.figures["lake"]  # purged before the crash
    assert b"7109" not in path.read_bytes()
    assert [r.status for r in store.read_requests(settings)] == ["done"]
    assert forget(settings, phone="05077897109").figures["no_op"]


def test_compaction_leaves_no_deleted_value_in_the_file(settings: Settings) -> None:
    path = settings.resolved_paths.warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select 'person' || i || '@example.com' as email "
                    "from range(2000) r(i)")
        con.execute("checkpoint")
        con.execute("delete from t where email = 'person1234@example.com'")
        con.execute("checkpoint")
    assert b"person1234@" in path.read_bytes()  # DuckDB leaves it in the file
    assert compact(settings)
    assert b"person1234@" not in path.read_bytes()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from t").fetchall() == [(1999,)]
