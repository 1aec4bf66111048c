"""Cells of the admin's lists that people read at a glance: dates in local time, phone numbers
as Japanese write them, durations as m:ss, and long SIDs shortened (the full value in a title).

Every helper returns HTML that stays on one line (``class="nowrap"``, see
``contactcenter/static/contactcenter/admin.css``), so a list fits 1280 px without numbers
breaking over three lines.
"""

from django.utils import timezone
from django.utils.html import format_html

from .phones import format_phone_number

EMPTY = "—"


def one_line(text):
    """Any text as one unbreakable line."""
    if text in (None, ""):
        return EMPTY
    return format_html('<span class="nowrap">{}</span>', text)


def local_datetime(value):
    """``2027-02-23 14:05`` in the installation's time zone (Asia/Tokyo), or a dash."""
    if value is None:
        return EMPTY
    return one_line(f"{timezone.localtime(value):%Y-%m-%d %H:%M}")


def phone(e164):
    """``090-1234-5678`` for a Japanese number, ``+1 415-555-0100`` for another one."""
    if not e164:
        return EMPTY
    return one_line(format_phone_number(e164))


def minutes_seconds(seconds):
    """``2:05`` for 125 seconds, ``1:02:05`` from an hour on, a dash when unknown."""
    if seconds is None:
        return EMPTY
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return one_line(text)


def short_sid(sid, *, head=6, tail=4):
    """``RE1a2b…9f0e`` with the whole SID in the title (hover, copy from the detail page)."""
    if not sid:
        return EMPTY
    if len(sid) <= head + tail + 1:
        return one_line(sid)
    return format_html(
        '<span class="nowrap sid" title="{}">{}…{}</span>', sid, sid[:head], sid[-tail:]
    )
