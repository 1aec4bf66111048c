"""Create the staff roles (監督者, オペレーター, コンプライアンス担当) with their permissions."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, OPERATOR, SUPERVISOR, grant

PERMISSIONS = {
    SUPERVISOR: [
        "contactcenter.view_operator",
        "contactcenter.add_operator",
        "contactcenter.change_operator",
        "contactcenter.view_other_operators_data",
        "contactcenter.view_customer",
        "contactcenter.change_customer",
        "contactcenter.view_call",
    ],
    COMPLIANCE: [
        "contactcenter.view_operator",
        "contactcenter.view_other_operators_data",
        "contactcenter.view_customer",
        "contactcenter.view_call",
    ],
    # Operators see their own operator record and their own calls, nothing else.
    OPERATOR: [
        "contactcenter.view_operator",
        "contactcenter.view_call",
    ],
}


def create_roles(apps, schema_editor):
    for group_name, permissions in PERMISSIONS.items():
        grant(apps, group_name, permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contactcenter", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
