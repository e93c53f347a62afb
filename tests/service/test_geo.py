import math

import pytest

from service.common.errors import ValidationFailedError
from service.common.geo import Point, from_wgs84, haversine_km, to_wgs84

HEFEI_WGS = Point(117.2272, 31.8206)
HEFEI_GCJ = Point(117.232682, 31.818601)
HEFEI_BD = Point(117.239110, 31.824931)


def metres(a: Point, b: Point) -> float:
    return haversine_km(a.lon, a.lat, b.lon, b.lat) * 1000


def test_wgs84_to_gcj02_matches_check_value_within_a_metre():
    assert metres(from_wgs84(HEFEI_WGS, "gcj02"), HEFEI_GCJ) < 1


def test_gcj02_to_wgs84_matches_check_value_within_a_metre():
    assert metres(to_wgs84(HEFEI_GCJ.lon, HEFEI_GCJ.lat, "gcj02"), HEFEI_WGS) < 1


def test_wgs84_to_bd09_matches_check_value_within_a_metre():
    assert metres(from_wgs84(HEFEI_WGS, "bd09"), HEFEI_BD) < 1


def test_bd09_to_wgs84_matches_check_value_within_a_metre():
    assert metres(to_wgs84(HEFEI_BD.lon, HEFEI_BD.lat, "bd09"), HEFEI_WGS) < 1


def test_the_gcj02_shift_in_hefei_is_about_564_metres():
    assert 560 < metres(HEFEI_WGS, HEFEI_GCJ) < 568


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_points_outside_china_are_not_shifted(system):
    paris = Point(2.3522, 48.8566)
    assert to_wgs84(paris.lon, paris.lat, system) == paris
    assert from_wgs84(paris, system) == paris


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [
        (181, 30, "location.lon"),
        (117, -91, "location.lat"),
        (math.nan, 30, "location.lon"),
        (117, math.inf, "location.lat"),
        ("east", 30, "location.lon"),
        (True, 30, "location.lon"),
    ],
)
def test_out_of_range_or_non_finite_coordinates_are_refused(lon, lat, field):
    with pytest.raises(ValidationFailedError) as info:
        to_wgs84(lon, lat, "wgs84")
    assert info.value.code == "invalid_coordinates"
    assert field in info.value.errors


def test_unknown_coordinate_system_is_refused():
    with pytest.raises(ValidationFailedError) as info:
        to_wgs84(117.0, 31.0, "mercator")
    assert info.value.code == "invalid_coord_system"


def test_haversine_hefei_to_huangshan_is_about_200_km():
    assert 195 < haversine_km(117.2272, 31.8206, 118.3375, 29.7147) < 260
