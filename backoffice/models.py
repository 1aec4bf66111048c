from django.db import models
from django.utils.translation import gettext_lazy as _


class DailyFigures(models.Model):
    """One past day's figures for the dashboard (backoffice/rollup.py): a row per day, so
    that the 30 days cost a read of 30 rows, not an aggregate over hundreds of thousands of
    calls. Today is counted live; past days are counted again while they can still change
    (recordings fetched or purged late), every ten minutes."""

    day = models.DateField(_("day"), primary_key=True)
    calls = models.PositiveIntegerField(_("calls"), default=0)
    answered = models.PositiveIntegerField(_("answered"), default=0)
    missed = models.PositiveIntegerField(_("missed"), default=0)
    granted = models.PositiveIntegerField(_("consent granted"), default=0)
    refused = models.PositiveIntegerField(_("consent refused"), default=0)
    stored = models.PositiveIntegerField(_("recordings stored"), default=0)
    waiting = models.PositiveIntegerField(_("recordings waiting to be fetched"), default=0)
    fetch_failed = models.PositiveIntegerField(_("recordings fetch failed"), default=0)
    counted_at = models.DateTimeField(_("counted at"))

    class Meta:
        verbose_name = _("daily figures")
        verbose_name_plural = _("daily figures")

    def __str__(self):
        return str(self.day)
