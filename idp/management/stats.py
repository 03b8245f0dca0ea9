"""``/api/v2/stats/daily`` and ``/api/v2/stats/active-users``, as Auth0 Management API v2's
stats (``read:stats``), counted from the tenant log (``log_events``, indexed by ``time``).

- ``GET /stats/daily?from=YYYYMMDD&to=YYYYMMDD``: one entry per UTC day of the range (both ends
  included; at most 366 days; by default the last 30), ``logins`` the ``login.success`` events
  (passwords, passkeys, connections), ``signups`` the ``signup.success`` events,
  ``leaked_passwords`` always 0 (idp has no breached-password detection), ``created_at`` and
  ``updated_at`` the first and last event counted that day (the day itself when none).
- ``GET /stats/active-users``: how many distinct users logged in within the last 30 days, a bare
  number as Auth0 answers it.

The counts are read from the log each time (one grouped query over the range's rows, found by
the ``time`` index), so they follow the log's retention: events pruned are no longer counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator
from sqlalchemy import distinct, func, select

from idp.audit import events
from idp.audit.models import LogEvent
from idp.core import clock
from idp.extensions import db
from idp.management.registry import route
from idp.management.validation import Out, Query

TAG = "stats"
DAY = 86400
MAX_DAYS = 366
ACTIVE_DAYS = 30
COUNTED = {events.LOGIN_SUCCESS: "logins", events.SIGNUP_SUCCESS: "signups"}


def _day(value: str) -> str:
    try:
        datetime.strptime(value, "%Y%m%d")  # a calendar day, read as UTC in _epoch
    except ValueError:
        raise ValueError("a day is YYYYMMDD, for example 20261201") from None
    return value


Day = Annotated[str, Field(min_length=8, max_length=8), AfterValidator(_day)]


def _epoch(day: str) -> int:
    return int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class DailyQuery(Query):
    from_: Day | None = Field(None, alias="from", description="First day, YYYYMMDD (UTC).")
    to: Day | None = Field(None, description="Last day, YYYYMMDD (UTC), included.")

    @model_validator(mode="after")
    def _range(self) -> DailyQuery:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from is after to")
        first, last = self.bounds()
        if (last - first) // DAY > MAX_DAYS:
            raise ValueError(f"the range is at most {MAX_DAYS} days")
        return self

    def bounds(self) -> tuple[int, int]:
        """The range's first second and the second after it (UTC days)."""
        today = clock.now() // DAY * DAY
        end = _epoch(self.to) + DAY if self.to else today + DAY
        start = _epoch(self.from_) if self.from_ else end - ACTIVE_DAYS * DAY
        return start, end


class DailyStat(Out):
    date: str
    logins: int
    signups: int
    leaked_passwords: int = Field(description="Always 0: no breached-password detection.")
    updated_at: str
    created_at: str


@route("/stats/daily", scope="read:stats", tag=TAG, summary="Daily logins and sign-ups",
       query=DailyQuery, response=list[DailyStat])  # fmt: skip
def daily_stats(query: DailyQuery) -> list[dict[str, Any]]:
    """One entry per day of the range, oldest first, days without events included."""
    start, end = query.bounds()
    day = LogEvent.time // DAY
    rows = db.session.execute(
        select(day, LogEvent.type, func.count(), func.min(LogEvent.time), func.max(LogEvent.time))
        .where(LogEvent.time >= start, LogEvent.time < end, LogEvent.type.in_(COUNTED))
        .group_by(day, LogEvent.type)
    ).all()
    found: dict[int, dict[str, Any]] = {}
    for number, kind, count, first, last in rows:
        entry = found.setdefault(int(number) * DAY, {"first": first, "last": last})
        entry[COUNTED[kind]] = int(count)
        entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
    out = []
    for moment in range(start, end, DAY):
        entry = found.get(moment, {"first": moment, "last": moment})
        out.append({
            "date": iso(moment), "logins": entry.get("logins", 0),
            "signups": entry.get("signups", 0), "leaked_passwords": 0,
            "created_at": iso(entry["first"]), "updated_at": iso(entry["last"]),
        })  # fmt: skip
    return out


@route("/stats/active-users", scope="read:stats", tag=TAG,
       summary="Users who logged in within 30 days", response=int)  # fmt: skip
def active_users() -> int:
    """Distinct users with a ``login.success`` event in the last 30 days."""
    since = clock.now() - ACTIVE_DAYS * DAY
    count = db.session.scalar(
        select(func.count(distinct(LogEvent.user_id))).where(
            LogEvent.type == events.LOGIN_SUCCESS, LogEvent.time >= since,
            LogEvent.user_id.is_not(None))
    )  # fmt: skip
    return int(count or 0)
