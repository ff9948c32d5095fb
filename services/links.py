"""A trip's short link (``/s/<slug>``): made with the trip, followed to the trip's
``wa.me`` join link, its clicks counted per day so the jastiper sees which post brought
buyers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ShortLink, Trip
from storage.repo import links as repo
from storage.repo import trips as trips_repo

JAKARTA = ZoneInfo("Asia/Jakarta")


def day_of(now: dt.datetime) -> dt.date:
    """The day a click counts for: the calendar day in Jakarta (where jastipers post)."""
    return now.astimezone(JAKARTA).date()


def trip_target(code: str) -> str:
    """What a trip's link row keeps as its target: the trip page's path. The redirect
    itself goes to the join link built with the business number configured today."""
    return f"/t/{code}"


async def ensure_for_trip(session: AsyncSession, trip: Trip) -> ShortLink:
    """The trip's short link, made now if the trip has none (trips older than links)."""
    link = await repo.of_trip(session, trip.id)
    if link is None:
        link = await repo.add(
            session, await repo.free_slug(session), trip_target(trip.code), trip_id=trip.id
        )
    return link


@dataclasses.dataclass(frozen=True, slots=True)
class Followed:
    trip_code: str | None  # the join link of this trip is where it goes
    target: str  # else this


async def of_trip(session: AsyncSession, trip: Trip) -> ShortLink | None:
    """The trip's short link (its first, should it have several), if it has one."""
    return await repo.of_trip(session, trip.id)


async def follow(session: AsyncSession, slug: str, today: dt.date) -> Followed | None:
    """Count a click on the link today and say where it goes; None for an unknown slug."""
    link = await repo.get(session, slug.lower()) if len(slug) <= 32 else None
    if link is None:
        return None
    await repo.count_click(session, link.id, today)
    if link.trip_id is not None:
        trip = await trips_repo.get(session, link.trip_id)
        if trip is not None:
            return Followed(trip.code, link.target)
    return Followed(None, link.target)


async def resolve(session: AsyncSession, slug: str) -> Followed | None:
    """Where the link goes, without counting a click (a link-preview crawler's visit)."""
    link = await repo.get(session, slug.lower()) if len(slug) <= 32 else None
    if link is None:
        return None
    if link.trip_id is not None:
        trip = await trips_repo.get(session, link.trip_id)
        if trip is not None:
            return Followed(trip.code, link.target)
    return Followed(None, link.target)


@dataclasses.dataclass(frozen=True, slots=True)
class Clicks:
    slug: str
    total: int
    today: int


async def clicks(session: AsyncSession, trip: Trip, today: dt.date) -> Clicks:
    """The trip's short link and how often it was followed, in all and today."""
    link = await ensure_for_trip(session, trip)
    total, on_day = await repo.clicks(session, link.id, today)
    return Clicks(link.slug, total, on_day)
