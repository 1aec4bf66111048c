"""The three staff roles, as Django groups created by a data migration.

Group names are the Japanese names people see in the admin. Permissions are granted by
migrations (``0002_roles`` here; later apps add their own), so a deployment's roles are
reproducible and reviewable in version control.
"""

SUPERVISOR = "監督者"
OPERATOR = "オペレーター"
COMPLIANCE = "コンプライアンス担当"


def grant(apps, group_name, permissions):
    """Give ``group_name`` the permissions named ``app_label.codename`` (used by migrations)."""
    from django.contrib.auth.management import create_permissions

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    # Permissions are normally created after all migrations ran; a data migration that
    # needs them must create them first.
    for app_config in apps.get_app_configs():
        if getattr(app_config, "models_module", None) is None:  # a migration's app registry
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
        else:
            create_permissions(app_config, apps=apps, verbosity=0)
    group, _ = group_model.objects.get_or_create(name=group_name)
    for name in permissions:
        app_label, codename = name.split(".")
        group.permissions.add(
            permission_model.objects.get(content_type__app_label=app_label, codename=codename)
        )


class NotAllowed(Exception):
    """A service refused an action the user's role does not allow.

    ``message`` is for the person who asked; ``status`` is the HTTP status views and the API
    answer with (403). Views, admin actions and the API translate it; they do not re-check.
    """

    status = 403

    def __init__(self, message, *, reason="no_permission"):
        super().__init__(str(message))
        self.message = message
        self.reason = reason


def require(user, permission, message):
    """Raise ``NotAllowed(message)`` unless ``user`` holds ``permission``."""
    if user is None or not user.has_perm(permission):
        raise NotAllowed(message)


# The roles whose holders can hear any recording or read and export the whole audit trail:
# their accounts need a second factor (TOTP) on top of the password.
SECOND_FACTOR_ROLES = (SUPERVISOR, COMPLIANCE)


def requires_second_factor(user):
    """Whether ``user`` must pass a second factor before using staff pages."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.groups.filter(name__in=SECOND_FACTOR_ROLES).exists()
    )


def staff_emails(*group_names):
    """The email addresses of the active users of ``group_names`` (default: supervisors and
    compliance officers), for the product's emails to staff."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(groups__name__in=group_names or SECOND_FACTOR_ROLES, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
