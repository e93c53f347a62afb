"""The plan's counts of the register and the training records, read through their repository: social
workers in post by employer kind and on the day before, people trained per category, elderly-care
completions, each under a division prefix; and the stored copies of the counts, read back as stored.

People and records are made by the register's and the training sheet's CSV imports.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from service.common.context import Context
from service.common.models import utcnow
from service.workforce.models import RegisterCounts, RegisterWindow
from service.workforce.repository.register_counts import RegisterCountsRepository
from tests.factories import (
    id_card,
    import_register,
    import_training_records,
    make_station,
    make_training_session,
    worker_row,
)

WINDOW = RegisterWindow(
    prefix="341002",
    as_of=date(2025, 6, 30),
    before=date(2024, 12, 31),
    year_start=date(2025, 1, 1),
    period_start=date(2025, 4, 1),
)


def completed(seq: int, on: str) -> dict[str, str]:
    """A training sheet row: the ``seq``-th register entry completed the session on ``on``."""
    return {"id_card": id_card("19900101", seq, region="341002"), "status": "completed", "completed_on": on}


async def register_and_train(ctx: Context) -> None:
    """Five register entries of the county and two sessions' results (see the counts the tests expect)."""
    await make_station(ctx)
    await import_register(
        ctx,
        [
            worker_row(1),  # a station's social worker since 2023
            worker_row(2, employer_kind="care_home", employer_name="屯溪区福利院"),  # a care home's, since 2023
            worker_row(3, start_date="2025-03-01"),  # started within the year: not in post the day before
            worker_row(4, status="left", end_date="2024-06-30"),  # left before the window
            worker_row(5, occupation="elderly_care"),  # a care worker, not a social worker
        ],
    )
    certified = await make_training_session(ctx, category="certified", starts_on="2025-04-01", ends_on="2025-04-03")
    await import_training_records(ctx, certified.id, [completed(1, "2025-04-03"), completed(2, "2025-04-03")])
    care = await make_training_session(ctx, category="elderly_care", starts_on="2025-05-06", ends_on="2025-05-08")
    await import_training_records(ctx, care.id, [completed(5, "2025-05-08")])
    earlier = await make_training_session(ctx, category="manager", starts_on="2024-10-08", ends_on="2024-10-10")
    await import_training_records(ctx, earlier.id, [completed(3, "2024-10-10")])  # before the year: not counted


async def test_the_counts_of_a_window_follow_the_register_and_the_training_records(ctx: Context) -> None:
    await register_and_train(ctx)
    counts = await RegisterCountsRepository(ctx.db).count(WINDOW)
    assert counts == RegisterCounts(
        in_post_by_kind={"station": 2, "care_home": 1},
        in_post_before=2,
        trained_by_category={"certified": 2, "elderly_care": 1},
        elderly_care_completions=1,
    )


async def test_a_window_counts_only_under_its_prefix_and_up_to_its_day(ctx: Context) -> None:
    await register_and_train(ctx)
    repo = RegisterCountsRepository(ctx.db)
    elsewhere = await repo.count(replace(WINDOW, prefix="3401"))
    assert elsewhere == RegisterCounts({}, 0, {}, 0)
    # On 2025-04-30 the elderly-care session had not yet ended and the March starter was in post.
    april = replace(WINDOW, as_of=date(2025, 4, 30))
    assert await repo.count(april) == RegisterCounts({"station": 2, "care_home": 1}, 2, {"certified": 2}, 0)


async def test_stored_counts_read_back_as_stored_and_a_later_store_replaces_them(ctx: Context) -> None:
    repo = RegisterCountsRepository(ctx.db)
    assert await repo.stored("341002:2025") is None
    at = utcnow().replace(microsecond=0)
    first = RegisterCounts({"station": 3}, 2, {"certified": 1}, 4)
    await repo.store("341002:2025", first, version=7, computed_at=at)
    got = await repo.stored("341002:2025")
    assert got is not None and (got.counts, got.version, got.computed_at) == (first, 7, at)
    # Zero counts keep their meaning through the stored shape.
    empty = RegisterCounts({}, 0, {}, 0)
    await repo.store("341002:2025", empty, version=8, computed_at=at + timedelta(minutes=1))
    again = await repo.stored("341002:2025")
    assert again is not None and (again.counts, again.version) == (empty, 8)
    assert await repo.stored("341002:2024") is None
