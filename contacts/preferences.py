"""How channel preferences are stored and queried.

Each contact row carries ``preferences``, a JSONB object holding only the
channels whose status was ever set to ``opted_in`` or ``opted_out``; a channel
absent from it is ``unset``. So the six statuses come with the contact row at
no extra query, and "who is opted out of channel X" is a partial btree index
per channel (plus one for "any channel") on the predicates built here, in the
order the opt-out listing reads them: newest contact first.

Every query on a status goes through ``status_q`` so that the API's opt-out
listing, segment rules and the indexes' predicates are the same expressions.
"""

from functools import reduce
from operator import or_

from django.db import models
from django.db.models import Q

from contacts.constants import CHANNELS, UNSET

OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"


def status_q(channel: str, status: str) -> Q:
    """Contacts whose ``channel`` has ``status`` (exactly; never NULL for any row)."""
    has_status = Q(preferences__has_key=channel) & Q(**{f"preferences__{channel}__exact": status})
    if status == UNSET:
        # Unset is normally stored as an absent key; a stored "unset" reads the same.
        return ~Q(preferences__has_key=channel) | has_status
    return has_status


def opted_out_q(channel: str | None = None) -> Q:
    """Opted out of ``channel``, or of at least one channel when ``channel`` is None."""
    if channel is not None:
        return _opted_out_expression(channel)
    return reduce(or_, (_opted_out_expression(name) for name in CHANNELS))


def _opted_out_expression(channel: str) -> Q:
    # ``preferences -> 'sms' = '"opted_out"'``: the form the partial indexes use.
    return Q(**{f"preferences__{channel}__exact": OPTED_OUT})


def optout_indexes() -> list[models.Index]:
    """Partial indexes serving the opt-out listing (newest first), per channel and for any channel."""
    columns = (models.F("account"), models.F("created_at").desc(), models.F("id").desc())
    per_channel = [
        models.Index(*columns, name=f"contact_optout_{channel}", condition=opted_out_q(channel)) for channel in CHANNELS
    ]
    return [*per_channel, models.Index(*columns, name="contact_optout_any", condition=opted_out_q())]


def statuses(stored: dict) -> dict[str, str]:
    """The six channel statuses from the stored object."""
    return {channel: stored.get(channel, UNSET) for channel in CHANNELS}
