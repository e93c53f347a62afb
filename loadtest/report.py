"""Numbers, the ledger check, the verdict and the latency plot of a load run."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from loadtest.cluster import Cluster
from loadtest.users import Recorder, Sample
from service.cases.lifecycle import TRANSITIONS
from service.cases.states import FINAL_STATES, STATES

# Operations on cases that must keep working while Redis is down.
CASE_OPS = {
    "case.submit", "case.list", "case.get", "case.rate", "case.queue", "case.accept", "case.resolve",
    "case.unrouted", "case.dispatch", "client.submit", "client.get", "kpi.read",
}  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stats(samples: list[Sample], seconds: float) -> dict[str, Any]:
    lat = [s.latency * 1000 for s in samples]
    return {
        "requests": len(samples),
        "per_second": round(len(samples) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(_pct(lat, 0.50), 1),
        "p95_ms": round(_pct(lat, 0.95), 1),
        "p99_ms": round(_pct(lat, 0.99), 1),
        "max_ms": round(max(lat, default=0.0), 1),
        "by_status": dict(sorted(Counter(str(s.status) for s in samples).items())),
    }


def _in(s: Sample, start: float, end: float) -> bool:
    return s.t <= end and s.t + s.latency >= start


def summarise(
    rec: Recorder, cluster: Cluster, *, load_seconds: float, windows: list[dict[str, Any]], probes: list[dict[str, Any]]
) -> dict[str, Any]:
    by_op: dict[str, list[Sample]] = defaultdict(list)
    for s in rec.samples:
        by_op[s.op].append(s)
    errors = Counter(str(s.status) for s in rec.samples if s.status == 0 or s.status >= 400)
    out: dict[str, Any] = {
        "total": _stats(rec.samples, load_seconds),
        "operations": {op: _stats(v, load_seconds) for op, v in sorted(by_op.items())},
        "errors_by_status": dict(sorted(errors.items())),
        "codes_by_status": {
            st: dict(Counter(s.code or "-" for s in rec.samples if str(s.status) == st)) for st in errors
        },
        "peak_rss_mb": {f"web-{p.slot}": round(p.peak_rss / 2**20, 1) for p in cluster.webs},
        "web_starts": {f"web-{p.slot}": p.starts for p in cluster.webs},
        "submissions": {
            "keys": len(rec.submissions),
            "acknowledged": sum(1 for x in rec.submissions if x.acknowledged),
            "retried": sum(1 for x in rec.submissions if len(x.statuses) > 1),
        },
    }
    faults = []
    for w in windows:
        # a request belongs to the window if it overlaps it or starts within 2 s after (late errors)
        inside = [s for s in rec.samples if _in(s, w["start"], w["end"] + 2)]
        others = [o for o in windows if o is not w]
        after = [
            s
            for s in rec.samples
            if w["end"] + 15 <= s.t <= w["end"] + 35
            and not s.op.endswith(".probe")
            and not any(_in(s, o["start"] - 1, o["end"] + 2) for o in others)
        ]
        entry = {
            **{k: round(v, 1) if isinstance(v, float) else v for k, v in w.items()},
            "requests": len(inside),
            "by_status": dict(sorted(Counter(str(s.status) for s in inside).items())),
            "status_500": sum(1 for s in inside if s.status == 500),
            "status_503_without_retry_after": sum(1 for s in inside if s.status == 503 and not s.retry_after),
            "max_latency_ms": round(max((s.latency * 1000 for s in inside), default=0.0), 1),
            "max_latency_ms_by_op": {
                op: round(max(s.latency for s in inside if s.op == op) * 1000, 1)
                for op in sorted({s.op for s in inside})
            },
            "case_ops_5xx": sum(1 for s in inside if s.op in CASE_OPS and (s.status >= 500 or s.status == 0)),
            "case_ops_2xx": sum(1 for s in inside if s.op in CASE_OPS and 200 <= s.status < 300),
            "recovered_15_35s_after": {
                "requests": len(after),
                "errors_5xx": sum(1 for s in after if s.status >= 500 or s.status == 0),
            },
        }
        faults.append(entry)
    if faults:
        out["faults"] = faults
        out["probes"] = probes
    return out


def _ledger_sync(cluster: Cluster, rec: Recorder, catch_up: float) -> dict[str, Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(cluster.mongo.uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
    try:
        db = client["huimin_load"]
        problems: list[str] = []
        acked = [x for x in rec.submissions if x.acknowledged]
        split = [x.key for x in acked if len(x.case_ids) != 1]
        if split:
            problems.append(f"{len(split)} keys answered with different case ids, e.g. {split[:3]}")
        ids = sorted({cid for x in acked for cid in x.case_ids})
        found = {d["_id"]: d for d in db.cases.find({"_id": {"$in": ids}}, {"_id": 1})}
        missing = [i for i in ids if i not in found]
        if missing:
            problems.append(f"{len(missing)} acknowledged cases missing, e.g. {missing[:3]}")
        # exactly once per key: every key is written into the case's description
        per_key = Counter(
            d.get("description", "")
            for d in db.cases.find({"description": {"$regex": "^load-key:"}}, {"description": 1})
        )
        dup_keys = [k for k, n in per_key.items() if n > 1]
        if dup_keys:
            problems.append(f"{len(dup_keys)} keys created more than one case, e.g. {dup_keys[:3]}")
        all_cases = list(db.cases.find({}, {"history": 1, "status": 1, "station_id": 1, "created_by": 1, "owner": 1}))
        case_events = db.events.find({"case_id": {"$exists": True}}, {"case_id": 1})  # events of cases only
        events_per_case = Counter(str(e["case_id"]) for e in case_events)
        bad_history = [
            str(d["_id"]) for d in all_cases if len(d.get("history") or []) != events_per_case.get(str(d["_id"]), 0)
        ]
        if bad_history:
            problems.append(f"{len(bad_history)} cases whose history differs from their events, e.g. {bad_history[:3]}")
        leavable = {s for t in TRANSITIONS.values() for s in t.from_states}
        stuck = [
            str(d["_id"])
            for d in all_cases
            if d.get("status") not in STATES or (d["status"] not in FINAL_STATES and d["status"] not in leavable)
        ]
        if stuck:
            problems.append(f"{len(stuck)} cases in a state no action leaves, e.g. {stuck[:3]}")
        orphaned = [
            str(d["_id"])
            for d in all_cases
            if d.get("status") in ("dispatched", "accepted", "in_progress") and not d.get("station_id")
        ]
        if orphaned:
            problems.append(f"{len(orphaned)} open cases with no station, e.g. {orphaned[:3]}")

        # webhooks: every committed event of the integrator's cases reaches the receiver
        client_cases = [d["_id"] for d in all_cases if (d.get("created_by") or {}).get("role") == "client"]
        keys = set(client_cases)
        wanted = {str(e["_id"]) for e in db.events.find({"case_id": {"$in": list(keys)}}, {"_id": 1})}
        deadline = time.monotonic() + catch_up
        waited = 0.0
        start = time.monotonic()
        while wanted - cluster.receiver.event_ids and time.monotonic() < deadline:
            time.sleep(1.0)
            wanted = {str(e["_id"]) for e in db.events.find({"case_id": {"$in": list(keys)}}, {"_id": 1})}
        waited = time.monotonic() - start
        undelivered = sorted(wanted - cluster.receiver.event_ids)
        if undelivered:
            problems.append(f"{len(undelivered)} integrator events never reached the receiver, e.g. {undelivered[:3]}")
        if cluster.receiver.bad_signatures:
            problems.append(f"{cluster.receiver.bad_signatures} webhook deliveries had a bad signature")
        notices = _notice_ledger(db, cluster, all_cases, deadline)
        problems += notices.pop("problems")
        return {
            "acknowledged_cases": len(ids),
            "cases_in_database": len(all_cases),
            "events_in_database": sum(events_per_case.values()),
            "by_status": dict(Counter(d.get("status") for d in all_cases)),
            "integrator_cases": len(client_cases),
            "integrator_events": len(wanted),
            "webhook_events_received": len(cluster.receiver.event_ids & wanted),
            "webhook_deliveries": cluster.receiver.deliveries,
            "webhook_catch_up_s": round(waited, 1),
            "resident_notices": notices,
            "problems": problems,
            "ok": not problems,
        }
    finally:
        client.close()


# Events that tell a case's resident something (docs/notifications.md); case.cancelled only
# when someone other than the resident cancelled.
RESIDENT_NOTICE_TYPES = ("case.accepted", "case.scheduled", "case.resolved", "case.rejected", "case.cancelled")


def _notice_ledger(db: Any, cluster: Cluster, all_cases: list[dict[str, Any]], deadline: float) -> dict[str, Any]:
    """Every event that should notify a phone resident produced exactly one SMS at the gateway."""
    phones = {str(d["_id"]): d.get("phone") for d in db.residents.find({}, {"phone": 1})}
    owner_phone = {str(d["_id"]): phones.get(str(d.get("owner"))) for d in all_cases if d.get("owner")}

    def expected() -> Counter[tuple[str, str]]:
        want: Counter[tuple[str, str]] = Counter()
        for e in db.events.find(
            {"type": {"$in": list(RESIDENT_NOTICE_TYPES)}}, {"type": 1, "case_id": 1, "case_number": 1, "actor": 1}
        ):
            if e["type"] == "case.cancelled" and (e.get("actor") or {}).get("role") == "resident":
                continue
            phone = owner_phone.get(str(e.get("case_id")))
            if phone:
                want[(phone, str(e.get("case_number")))] += 1
        return want

    def received() -> Counter[tuple[str, str]]:
        return Counter(
            (m["phone"], str((m.get("params") or {}).get("number")))
            for m in list(cluster.sms.notices)
            if m.get("template") != "huimin_staff_alert"
        )

    want = expected()
    while want - received() and time.monotonic() < deadline:
        time.sleep(1.0)
    got = received()
    missing, duplicated = want - got, got - want
    problems = []
    if missing:
        problems.append(
            f"{sum(missing.values())} resident notices never reached the SMS gateway, e.g. {list(missing)[:3]}"
        )
    if duplicated:
        problems.append(f"{sum(duplicated.values())} resident notices sent more than once, e.g. {list(duplicated)[:3]}")
    return {
        "expected": sum(want.values()),
        "sent": sum(got.values()),
        "missing": sum(missing.values()),
        "duplicated": sum(duplicated.values()),
        "problems": problems,
    }


async def check_ledger(cluster: Cluster, rec: Recorder, *, catch_up: float) -> dict[str, Any]:
    """Every acknowledged case exists once with its full history; every integrator event was delivered."""
    # The receiver runs on this loop: wait in a thread so it keeps answering.
    return await asyncio.to_thread(_ledger_sync, cluster, rec, catch_up)


def verdict(summary: dict[str, Any], *, chaos: bool) -> dict[str, Any]:
    failures = list(summary["ledger"]["problems"])
    if any(code != 200 for code in summary["ready_after"].values()):
        failures.append(f"not ready after the run: {summary['ready_after']}")
    if any(code not in (0, None) for code in summary["shutdown_exit_codes"].values()):
        failures.append(f"a web process did not shut down cleanly: {summary['shutdown_exit_codes']}")
    s500 = summary["errors_by_status"].get("500", 0)
    if s500:
        failures.append(f"{s500} answers were 500")
    if not chaos:
        server_errors = {k: v for k, v in summary["errors_by_status"].items() if k == "0" or k.startswith("5")}
        if server_errors:
            failures.append(f"server errors or no answer without faults: {server_errors}")
    for f in summary.get("faults", []):
        if f["status_503_without_retry_after"]:
            failures.append(f"{f['fault']}: 503 without Retry-After")
        if f["max_latency_ms"] > 15_000:
            failures.append(f"{f['fault']}: a request took {f['max_latency_ms']:.0f} ms (a hang)")
        if f["fault"] == "redis_down" and f["case_ops_5xx"]:
            failures.append(f"redis_down: {f['case_ops_5xx']} case requests failed while Redis was down")
        if f["fault"] == "redis_down" and not f["case_ops_2xx"]:
            failures.append("redis_down: no case request succeeded while Redis was down")
        if f["recovered_15_35s_after"]["errors_5xx"]:
            failures.append(f"{f['fault']}: still failing 15-35 s after the fault ended")
    for p in summary.get("probes", []):
        if p["probe"] == "otp_during_redis_outage" and (p["status"], p["code"]) != (503, "otp_unavailable"):
            failures.append(f"OTP during the Redis outage answered {p['status']} {p['code']}, not 503 otp_unavailable")
    return {"pass": not failures, "failures": failures}


def plot(rec: Recorder, path: Path, *, windows: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6), dpi=100)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in rec.samples:
        groups[s.op].append(s)
    palette = plt.get_cmap("tab20")
    for i, (op, samples) in enumerate(sorted(groups.items())):
        ok = [s for s in samples if 200 <= s.status < 400]
        ys = [max(s.latency * 1000, 0.1) for s in ok]
        ax.scatter([s.t for s in ok], ys, s=4, alpha=0.5, label=op, color=palette(i % 20))
    bad = [s for s in rec.samples if s.status == 0 or s.status >= 500]
    if bad:
        ax.scatter([s.t for s in bad], [max(s.latency * 1000, 0.1) for s in bad], s=18, marker="x", color="red",
                   label="5xx / no answer")  # fmt: skip
    for w in windows:
        ax.axvspan(w["start"], w["end"], color="orange", alpha=0.2)
        ax.text(w["start"], ax.get_ylim()[1] if ax.get_ylim()[1] > 1 else 1, w["fault"], fontsize=8, va="top")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, markerscale=3, ncol=2, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def print_summary(summary: dict[str, Any]) -> None:
    t = summary["total"]
    print(f"\n{t['requests']} requests, {t['per_second']} req/s; p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, "
          f"p99 {t['p99_ms']} ms")  # fmt: skip
    print(f"{'operation':16} {'n':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses")
    for op, s in summary["operations"].items():
        print(f"{op:16} {s['requests']:6} {s['per_second']:7} {s['p50_ms']:8} {s['p95_ms']:8} {s['p99_ms']:8}  "
              f"{s['by_status']}")  # fmt: skip
    print(f"errors by status: {summary['errors_by_status']} {summary['codes_by_status']}")
    print(f"peak RSS per web process (MB): {summary['peak_rss_mb']}; starts {summary['web_starts']}")
    for f in summary.get("faults", []):
        print(f"fault {f['fault']} {f['start']}-{f['end']} s: {f['requests']} requests {f['by_status']}, "
              f"500s {f['status_500']}, max {f['max_latency_ms']} ms, case ops ok {f['case_ops_2xx']} / failed "
              f"{f['case_ops_5xx']}; 15-35 s after: {f['recovered_15_35s_after']}")  # fmt: skip
    for p in summary.get("probes", []):
        print(f"probe {p}")
    led = {k: v for k, v in summary["ledger"].items() if k != "problems"}
    print(f"ledger: {led}")
    for p in summary["ledger"]["problems"]:
        print(f"  ledger problem: {p}")
    print(f"ready after: {summary['ready_after']}; shutdown exit codes: {summary['shutdown_exit_codes']}")
