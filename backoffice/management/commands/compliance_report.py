"""``manage.py compliance_report --from 2026-11-01 --to 2026-11-30 --output report.pdf``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from backoffice import report_pdf

ACTOR = "manage.py compliance_report"


class Command(BaseCommand):
    help = (
        "Write the compliance report (R1–R12 and the audit trail) for a period of Asia/Tokyo "
        "days, both included, as PDF or HTML (chosen by the output's suffix)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--output", required=True, help="report.pdf or report.html")
        parser.add_argument("--language", default="ja", help="ja (default) or en")

    def handle(self, *args, first, last, output, language, **options):
        if language not in report_pdf.LANGUAGES:
            raise CommandError(f"--language must be ja or en, not {language!r}.")
        path = Path(output)
        kind = path.suffix.lower().lstrip(".")
        if kind not in report_pdf.FORMATS:
            raise CommandError(f"--output must end in .pdf or .html, not {path.name!r}.")
        if not path.parent.is_dir():
            raise CommandError(f"--output: the folder {str(path.parent)!r} does not exist.")
        with translation.override("en"):  # the command's own messages are for the shell
            try:
                period = report_pdf.parse_period(first, last)
            except report_pdf.BadPeriod as error:
                raise CommandError(str(error.message)) from None
        try:
            _report, document = report_pdf.produce(
                period=period, language=language, output=kind, actor_label=ACTOR
            )
        except report_pdf.PdfUnavailable as error:
            raise CommandError(str(error.message)) from None
        if kind == "pdf":
            path.write_bytes(document)
        else:
            path.write_text(document, encoding="utf-8")
        self.stdout.write(
            self.style.SUCCESS(
                f"Compliance report {period.first_day} – {period.last_day} written to {path}."
            )
        )
