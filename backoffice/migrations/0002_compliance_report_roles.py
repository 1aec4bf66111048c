"""The compliance report (backoffice/compliance.py) is read by compliance officers and
supervisors: the permission ``backoffice.view_compliance_report``.

The report has no table of its own, so the permission hangs on a content type of its own
(``backoffice.compliancereport``), created here."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

PERMISSION = ("view_compliance_report", "Can view the compliance report")


def create_permission(apps):
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    content_type, _created = content_type_model.objects.get_or_create(
        app_label="backoffice", model="compliancereport"
    )
    codename, name = PERMISSION
    permission_model.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": name}
    )


def create_roles(apps, schema_editor):
    create_permission(apps)
    for role in (COMPLIANCE, SUPERVISOR):
        grant(apps, role, ["backoffice.view_compliance_report"])


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
