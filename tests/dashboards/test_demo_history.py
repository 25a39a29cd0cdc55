"""The demo's seeded history: replay shows the drill unfolding over the last hours, consistent with the rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from layers.read import history, situation
from layers.reference.demo import HISTORY_HOURS, SEEDED_BY

pytestmark = pytest.mark.db


def test_replay_shows_the_drill_unfolding(demo_db: Any) -> None:
    from tests.dashboards.conftest import DEMO_NOW

    src = f"drill-{demo_db.seed}"
    with demo_db.engine.connect() as c:
        first = history.first_record(c)
        assert first is not None and first <= DEMO_NOW - timedelta(hours=HISTORY_HOURS - 1)
        seeded = c.execute(text("SELECT count(*) FROM feature_history WHERE changed_by = :b"), {"b": SEEDED_BY})
        assert seeded.scalar_one() > 1000
        counts = []
        for hours in (18, 12, 6, 1):
            t = DEMO_NOW - timedelta(hours=hours)
            with history.as_of(c, t):
                active = situation.incident_kpis(c)["active"]
            one = lambda sql, t=t: int(c.execute(text(sql), {"t": t, "src": src}).scalar_one())  # noqa: E731
            occurred = one("SELECT count(*) FROM incidents WHERE source = :src AND occurred_at <= :t")
            # closed 1-3 h after they occurred: the ones closed by t lie between these two counts
            closed_lo = one("SELECT count(*) FROM incidents WHERE source = :src AND status = 'closed' "
                            "AND occurred_at <= :t - interval '3 hours'")
            closed_hi = one("SELECT count(*) FROM incidents WHERE source = :src AND status = 'closed' "
                            "AND occurred_at <= :t - interval '1 hour'")
            assert occurred - closed_hi <= active <= occurred - closed_lo, (hours, active, occurred)
            counts.append(occurred)
        assert counts == sorted(counts) and counts[0] < counts[-1]  # the drill grows as the replay runs
