"""The station network's pure decisions: dates, permissions, the checklist, the figures, CSV rows."""

from __future__ import annotations

from datetime import date

import pytest

from service.common.errors import BadRequestError, PermissionDeniedError
from service.common.ids import new_id
from service.common.models import Principal
from service.network import files, rules
from service.network.models import (
    Actor,
    Document,
    EquipmentItem,
    NetworkRecord,
    Site,
    Staffing,
    StationRef,
    Verification,
)

TODAY = date(2026, 11, 29)
STATION = StationRef(new_id(), "341002001", "昱东街道社工站", "341002", "屯溪区", "341000", "黄山市", ("elderly_care",))
HEAD = Principal(subject=new_id(), role="station_head", station_id=STATION.id)
OTHER_HEAD = Principal(subject=new_id(), role="station_head", station_id=new_id())
SUPERVISOR = Principal(subject=new_id(), role="supervisor", division_prefix="3410")
FAR_SUPERVISOR = Principal(subject=new_id(), role="supervisor", division_prefix="3401")


def full_record(revision: int = 3) -> NetworkRecord:
    doc = Document("工作制度", date(2024, 1, 1), (new_id(),))
    return NetworkRecord(
        station_id=STATION.id,
        status="operating",
        dates={"built": date(2024, 1, 1), "operating": date(2024, 2, 1)},
        site=Site("新安路 8 号", 120.0, (new_id(),)),
        equipment=(EquipmentItem("电脑", 2),),
        workflows=(doc,),
        rules=(doc,),
        revision=revision,
    )


def test_the_current_status_needs_its_date_and_later_statuses_none():
    assert rules.check_dates("built", {}, TODAY) == {"dates.built": ["Give the day the station became built."]}
    errors = rules.check_dates("built", {"built": date(2024, 1, 1), "operating": date(2024, 2, 1)}, TODAY)
    assert list(errors) == ["dates.operating"]
    assert rules.check_dates("operating", {"built": date(2024, 1, 1), "operating": date(2024, 2, 1)}, TODAY) == {}


def test_dates_follow_the_order_of_the_statuses_and_none_is_in_the_future():
    errors = rules.check_dates("operating", {"built": date(2024, 3, 1), "operating": date(2024, 2, 1)}, TODAY)
    assert errors == {"dates.operating": ["Must not be before the built date (2024-03-01)."]}
    assert list(rules.check_dates("planned", {"planned": date(2026, 12, 1)}, TODAY)) == ["dates.planned"]


def test_only_the_stations_own_head_keeps_its_record():
    record = NetworkRecord(station_id=STATION.id)
    rules.check_may_keep(HEAD, STATION, record, {"equipment": []})
    with pytest.raises(PermissionDeniedError) as refused:
        rules.check_may_keep(OTHER_HEAD, STATION, record, {"equipment": []})
    assert refused.value.code == "not_your_station"


def test_model_stations_are_designated_by_supervisors_of_the_division_only():
    record = full_record()
    with pytest.raises(PermissionDeniedError) as refused:
        rules.check_may_keep(HEAD, STATION, record, {"status": "model", "dates": {"model": date(2025, 1, 1)}})
    assert refused.value.code == "model_designated_by_supervisor"
    rules.check_may_keep(SUPERVISOR, STATION, record, {"status": "model", "dates": {"model": date(2025, 1, 1)}})
    with pytest.raises(PermissionDeniedError) as kept:
        rules.check_may_keep(SUPERVISOR, STATION, record, {"equipment": []})
    assert kept.value.code == "record_kept_by_station_head"
    with pytest.raises(PermissionDeniedError) as outside:
        rules.check_may_keep(FAR_SUPERVISOR, STATION, record, {"status": "model"})
    assert outside.value.code == "station_outside_division"


def test_the_checklist_says_what_each_have_is_missing():
    empty = rules.checklist(NetworkRecord(station_id=STATION.id), Staffing(0), ())
    assert [c.met for c in empty] == [False] * 6
    assert empty[0].missing == ("address", "floor_area_m2", "photos")
    full = rules.checklist(full_record(), Staffing(1), STATION.capabilities)
    assert all(c.met for c in full)
    no_staff = rules.checklist(full_record(), Staffing(0), STATION.capabilities)
    assert [c.have for c in no_staff if not c.met] == ["staff"]
    # The social-worker register counts once it is consulted.
    assert all(c.met for c in rules.checklist(full_record(), Staffing(0, register=2), STATION.capabilities))


def test_a_sign_off_holds_only_for_the_revision_it_saw():
    record = full_record(revision=3)
    approved = Verification(new_id(), STATION.id, 3, "approved", None, Actor(SUPERVISOR.subject, "supervisor"), None)  # type: ignore[arg-type]
    assert rules.station_network(STATION, record, Staffing(1), approved).verified
    later = full_record(revision=4)
    assert not rules.station_network(STATION, later, Staffing(1), approved).verified
    assert not rules.station_network(STATION, record, Staffing(0), approved).verified


def test_coverage_counts_townships_with_an_operating_or_model_station():
    def net(code: str, status: str | None):
        ref = StationRef(new_id(), code, code, code[:6], "", code[:4] + "00", "", ("x",))
        return rules.station_network(ref, NetworkRecord(station_id=ref.id, status=status), Staffing(0), None)

    townships = {"341002001", "341002002", "341002003", "341002004"}
    nets = [net("341002001", "operating"), net("341002002", "model"), net("341002003", "built"), net("341002004", None)]
    f = rules.figures("341002", "屯溪区", "county", townships, nets)
    assert (f.townships, f.covered_townships, f.coverage_pct, f.coverage_gap_pct) == (4, 2, 50.0, 50.0)
    assert f.by_status == {"planned": 0, "built": 1, "operating": 1, "model": 1, "unreported": 1}
    assert (f.model_stations, f.compliant, f.verified, f.compliance_pct) == (1, 0, 0, 0.0)


def test_csv_rows_name_each_bad_column():
    changes, problems = files.parse_row(
        {"station_code": "341002001", "status": "open", "built_on": "2024-13-01", "floor_area_m2": "-3"}, TODAY
    )
    assert sorted(f for f, _ in problems) == ["built_on", "floor_area_m2", "status"]
    changes, problems = files.parse_row(
        {"station_code": "341002001", "status": "built", "built_on": "2024-01-02", "equipment": "电脑:2；档案柜"}, TODAY
    )
    assert problems == []
    assert changes["equipment"] == [EquipmentItem("电脑", 2), EquipmentItem("档案柜", 1)]
    assert changes["dates"] == {"built": date(2024, 1, 2)}


def test_division_scopes():
    assert rules.scope_prefix("340000") == "34" and rules.scope_prefix("341000") == "3410"
    assert rules.scope_prefix("341002") == "341002"
    assert rules.scope_of(SUPERVISOR, None) == "3410"
    assert rules.scope_of(SUPERVISOR, "341002") == "341002"
    with pytest.raises(PermissionDeniedError) as refused:
        rules.scope_of(SUPERVISOR, "340100")
    assert refused.value.code == "division_outside_scope"
    assert rules.scope_of(Principal(subject="a", role="admin"), None) == "34"


def test_exported_cells_cannot_run_as_formulas_and_import_back_unchanged():
    assert files.safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert files.safe_cell("新安路 8 号") == "新安路 8 号"
    changes, problems = files.parse_row(
        {"station_code": "341002001", "status": "planned", "planned_on": "2024-01-02", "site_address": "'=1+1"}, TODAY
    )
    assert problems == [] and changes["site"] == {"address": "=1+1"}


def test_a_cursor_the_server_did_not_write_is_refused():
    assert rules.decode_cursor(rules.encode_cursor("341002001")) == "341002001"
    with pytest.raises(BadRequestError) as refused:
        rules.decode_cursor("bm90LWEtY29kZQ")
    assert refused.value.code == "invalid_cursor"
