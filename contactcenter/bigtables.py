"""The admin's lists of the tables that grow by millions of rows (calls, recordings, the consent
ledger, the audit trail, customers): a constant number of queries whatever their size.

* **Counted without ``COUNT(*)``.** A list counts its rows up to ``EXACT_UP_TO`` (a ``LIMIT``ed
  count that stops there); beyond that, PostgreSQL's planner estimate is shown as such
  (「約 7,200,000 件（推定）」), and on other databases 「1,000 件以上」.
* **Paged by key, not by ``OFFSET``.** Newest first on ``keyset`` (the primary key, or a date
  and the primary key), an indexed order; "older" and "newer" links carry the last row's key
  (``?after=`` / ``?before=``), so every page costs what the first one does. A date typed in
  the jump field (``?upto=2025-03-04``) opens the list at the end of that day.
"""

import json
from datetime import datetime, time, timedelta

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import connections
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.formats import number_format
from django.utils.translation import gettext as _

AFTER_VAR = "after"
BEFORE_VAR = "before"
UPTO_VAR = "upto"
CURSOR_VARS = (AFTER_VAR, BEFORE_VAR, UPTO_VAR)
EXACT_UP_TO = 1000


class Counted(int):
    """How many rows a list has, as far as it was worth counting: a number that compares and
    prints as one, and whose ``label`` reads 「37 件」, 「約 7,200,000 件（推定）」 or
    「1,000 件以上」."""

    def __new__(cls, number, *, exact, estimated=False):
        counted = super().__new__(cls, number)
        counted.exact = exact
        counted.estimated = estimated
        return counted

    @property
    def number(self):
        return int(self)

    @property
    def label(self):
        """What the list says (templates localise ints as numbers, so they use this)."""
        if self.exact:
            return _("%(count)s rows") % {"count": number_format(self.number, force_grouping=True)}
        if self.estimated:
            return _("about %(count)s rows (estimated)") % {
                "count": number_format(self.number, force_grouping=True)
            }
        return _("more than %(count)s rows") % {
            "count": number_format(EXACT_UP_TO, force_grouping=True)
        }


def planner_estimate(queryset):
    """The number of rows PostgreSQL's planner expects ``queryset`` to return (no scan)."""
    plan = queryset.order_by().explain(format="json")
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"])


def count_rows(queryset):
    """Exact up to ``EXACT_UP_TO``, then the planner's estimate on PostgreSQL (``Counted``)."""
    counted = queryset.order_by().values("pk")[: EXACT_UP_TO + 1].count()
    if counted <= EXACT_UP_TO:
        return Counted(counted, exact=True)
    if connections[queryset.db].vendor == "postgresql":
        estimate = max(planner_estimate(queryset), EXACT_UP_TO + 1)
        return Counted(estimate, exact=False, estimated=True)
    return Counted(EXACT_UP_TO + 1, exact=False)


def end_of_day(day):
    """The first instant after ``day`` in the installation's time zone."""
    tz = timezone.get_current_timezone()
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


class KeysetChangeList(ChangeList):
    """The admin's change list, paged by ``model_admin.keyset`` and counted by ``count_rows``.

    ``keyset`` is a unique key (``("pk",)``, ``("seq",)``) or a date and a unique key
    (``("started_at", "pk")``), newest first. Sorting by the columns
    is off (``sortable_by = ()``): any other order would sort the whole table for each page.
    """

    def __init__(self, request, *args, **kwargs):
        self.cursor = {name: request.GET.get(name, "").strip() for name in CURSOR_VARS}
        super().__init__(request, *args, **kwargs)

    # --- the cursor is not a filter of the queryset --------------------------------------------

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        for name in CURSOR_VARS:
            lookup_params.pop(name, None)
        return lookup_params

    def get_queryset(self, request, exclude_parameters=None):
        self.keyset = self.model_admin.get_keyset(request)
        # Links to filters, searches and pages start from the newest rows again.
        for name in CURSOR_VARS:
            self.params.pop(name, None)
            self.filter_params.pop(name, None)
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.order_by(*(f"-{field}" for field in self.keyset))

    # --- one page ---------------------------------------------------------------------------

    def _key_of(self, raw):
        """The key of the row whose unique key (the keyset's last field) is ``raw``."""
        try:
            unique = int(raw)
        except ValueError:
            raise IncorrectLookupParameters(f"not a row: {raw!r}") from None
        if len(self.keyset) == 1:
            return (unique,)
        value = (
            self.model._default_manager.filter(**{self.keyset[-1]: unique})
            .values_list(self.keyset[0], flat=True)
            .first()
        )
        if value is None:
            raise IncorrectLookupParameters(f"no row {unique}")
        return (value, unique)

    def _older_than(self, queryset, key):
        *first, unique = self.keyset
        if not first:
            return queryset.filter(**{f"{unique}__lt": key[0]})
        # ``field <= value`` is the index's range; the rows of the same instant are then split
        # on the unique key.
        field = first[0]
        return queryset.filter(**{f"{field}__lte": key[0]}).exclude(
            **{field: key[0], f"{unique}__gte": key[1]}
        )

    def _newer_than(self, queryset, key):
        *first, unique = self.keyset
        if not first:
            return queryset.filter(**{f"{unique}__gt": key[0]})
        field = first[0]
        return queryset.filter(**{f"{field}__gte": key[0]}).exclude(
            **{field: key[0], f"{unique}__lte": key[1]}
        )

    def _page(self):
        """(rows, whether newer rows exist, whether older rows exist)."""
        per_page = self.list_per_page
        queryset = self.queryset
        if self.cursor[BEFORE_VAR]:
            key = self._key_of(self.cursor[BEFORE_VAR])
            newer = self._newer_than(queryset, key).order_by(*self.keyset)
            rows = list(newer[: per_page + 1])
            has_newer = len(rows) > per_page
            return list(reversed(rows[:per_page])), has_newer, True
        starting = bool(self.cursor[AFTER_VAR] or self.cursor[UPTO_VAR])
        if self.cursor[AFTER_VAR]:
            queryset = self._older_than(queryset, self._key_of(self.cursor[AFTER_VAR]))
        elif self.cursor[UPTO_VAR]:
            queryset = self._up_to(queryset, self.cursor[UPTO_VAR])
        rows = list(queryset[: per_page + 1])
        return rows[:per_page], starting, len(rows) > per_page

    def _up_to(self, queryset, raw):
        try:
            day = parse_date(raw)
        except ValueError:  # well formed, but no such day (2027-13-45)
            day = None
        if day is None:
            raise IncorrectLookupParameters(f"not a date: {raw!r}")
        date_field = self.model_admin.jump_date_field
        if date_field is None:
            raise IncorrectLookupParameters("this list has no date to jump to")
        if self.keyset[0] == date_field:
            return queryset.filter(**{f"{date_field}__lt": end_of_day(day)})
        # A list on its unique key: the newest row of that day, found on the date's index.
        unique = self.keyset[-1]
        newest = (
            self.model._default_manager.filter(**{f"{date_field}__lt": end_of_day(day)})
            .order_by(f"-{date_field}")
            .values_list(unique, flat=True)
            .first()
        )
        if newest is None:
            return queryset.none()
        return queryset.filter(**{f"{unique}__lte": newest})

    def get_results(self, request):
        rows, has_newer, has_older = self._page()
        self.result_list = rows
        self.result_count = count_rows(self.queryset)
        # The search box repeats the count when it differs from this one: said once, below.
        self.full_result_count = self.result_count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = has_newer or has_older
        self.paginator = None
        self.newer_url = self._link(BEFORE_VAR, rows[0]) if has_newer and rows else None
        self.older_url = self._link(AFTER_VAR, rows[-1]) if has_older and rows else None
        self.newest_url = self.get_query_string() if has_newer else None
        self.jump_date = self.cursor[UPTO_VAR]
        self.can_jump = self.model_admin.jump_date_field is not None

    def _link(self, name, row):
        return self.get_query_string({name: getattr(row, self.keyset[-1])})
