"""Single-document writes on the embedded server as a half hour's writes pile up.

SecantusDB keeps a record of every retryable write (a write sent with a session transaction
number) for 30 minutes, up to 10,000, and scans and re-sorts them on each write. This measures
``insert_one`` per 2,000 writes on a fresh server twice: as our embedded URI connects
(``retryWrites=false``, see ``service.storage.embedded.EmbeddedMongo.uri``) and with the
driver's default (``retryWrites=true``). Ours should stay flat; the default grows past 10,000.

    .venv/bin/python -m bench writes            # 12,000 writes each way
    .venv/bin/python -m bench --quick writes    # 4,000
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import MongoClient

from service.storage.embedded import EmbeddedMongo

STEP = 2000


def _per_write_ms(uri: str, total: int) -> list[float]:
    with MongoClient[dict[str, Any]](uri) as client:
        col = client["bench_writes"]["docs"]
        marks: list[float] = []
        started = time.perf_counter()
        for i in range(total):
            col.insert_one({"i": i})
            if (i + 1) % STEP == 0:
                now = time.perf_counter()
                marks.append((now - started) / STEP * 1000)
                started = now
        return marks


def run(*, quick: bool = False) -> int:
    total = 4000 if quick else 12000
    rows = {}
    for label, retry in (("ours (retryWrites=false)", False), ("driver default (retryWrites=true)", True)):
        server = EmbeddedMongo(":memory:", durable=False)
        uri = server.start()
        try:
            rows[label] = _per_write_ms(uri.replace("retryWrites=false", f"retryWrites={str(retry).lower()}"), total)
        finally:
            server.stop()
    print("ms per insert_one, per 2,000 writes: " + ", ".join(f"{(i + 1) * STEP:,}" for i in range(total // STEP)))
    for label, marks in rows.items():
        growth = marks[-1] / marks[0]
        print(f"{label:36} " + "  ".join(f"{m:6.2f}" for m in marks) + f"   last/first x{growth:.1f}")
    ours = rows["ours (retryWrites=false)"]
    return 0 if ours[-1] <= 2 * ours[0] else 1
