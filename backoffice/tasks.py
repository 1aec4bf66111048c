from celery import shared_task

from . import rollup


@shared_task(name="backoffice.tasks.refresh_daily_figures", ignore_result=True)
def refresh_daily_figures():
    """The dashboard's past 30 days counted again (recordings fetched or purged late)."""
    rollup.refresh()
