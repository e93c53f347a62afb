"""Who may see and change what in the alerts area (pure)."""

from __future__ import annotations

from service.alerts.models import AlertScope
from service.common.errors import PermissionDeniedError
from service.common.models import Principal

STAFF = ("worker", "station_head", "supervisor", "admin")
ALERTS_SCOPE = "alerts:write"


def require_staff(principal: Principal) -> None:
    if principal.role not in STAFF:
        raise PermissionDeniedError("staff_only", "Only staff manage devices, the duty rota and maintenance.")


def require_vendor(principal: Principal) -> None:
    if not principal.is_client or not principal.has_scope(ALERTS_SCOPE):
        raise PermissionDeniedError(
            "alerts_clients_only", "Alerts are reported by integrator clients holding the alerts:write scope."
        )


def sees_station(principal: Principal, *, station_id: str | None, township: str | None) -> bool:
    """Staff of the station, supervisors over its division, and admins."""
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and (township or "").startswith(principal.division_prefix or "")
    if principal.role in ("worker", "station_head"):
        return principal.station_id is not None and principal.station_id == station_id
    return False


def manages_rota(principal: Principal, *, station_id: str, township: str) -> bool:
    """Station heads of the station, supervisors over it, and admins set who is on duty."""
    if principal.role == "worker":
        return False
    return sees_station(principal, station_id=station_id, township=township)


def county_list_scope(principal: Principal) -> AlertScope:
    """``staff_scope`` for lists of records that carry ``county_code`` (alerts, devices): a county
    supervisor's as an equality on it (always the township's first six digits), which an index
    serves together with a range on the id, unlike a range on the township."""
    scope = staff_scope(principal)
    if principal.role == "supervisor" and len(principal.division_prefix or "") == 6:
        return AlertScope(county_code=principal.division_prefix)
    return scope


def staff_scope(principal: Principal) -> AlertScope:
    """The records (with ``station_id`` and ``township``) a staff member may list."""
    require_staff(principal)
    if principal.role == "admin":
        return AlertScope()
    if principal.role == "supervisor":
        if not principal.division_prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        return AlertScope(township_prefix=principal.division_prefix)
    if not principal.station_id:
        raise PermissionDeniedError("no_station", "Your account has no station assigned.")
    return AlertScope(station_id=principal.station_id)


def in_scope(scope: AlertScope, *, station_id: str | None, township: str | None) -> bool:
    """True if a record of ``station_id`` and ``township`` is one ``scope`` (from ``staff_scope``) lists."""
    if scope.station_id is not None and station_id != scope.station_id:
        return False
    if scope.township_prefix is not None:
        # the same bounds as the stored filter's range: codes are digits, and ":" follows "9"
        return township is not None and scope.township_prefix <= township < scope.township_prefix + ":"
    return True
