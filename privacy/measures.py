"""The safety-management measures (安全管理措置) published under APPI art. 32, written from
the running configuration.

Nothing here is free text an editor keeps up to date: every line is read from
``django.conf.settings``, the published notice and the cross-border register when the page is
asked for, so the page says what the system does today. A value that is not configured is
published as 「未設定」 rather than left out. Key material and passwords are never read out:
only key ids, bucket names and regions.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from contactcenter.roles import COMPLIANCE, OPERATOR, SECOND_FACTOR_ROLES, SUPERVISOR

from . import crossborder


def _not_set():
    return _("not set")


def _beat_interval(task):
    """How often beat runs ``task``, in words; 「未設定」 if it is not scheduled."""
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", {}) or {}
    for entry in schedule.values():
        if entry.get("task") == task:
            every = entry.get("schedule")
            if isinstance(every, timedelta):
                every = every.total_seconds()
            if isinstance(every, int | float):
                return _duration(every)
            return str(every)
    return None


def _duration(seconds):
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return _("every %(n)d hour(s)") % {"n": seconds // 3600}
    if seconds % 60 == 0:
        return _("every %(n)d minute(s)") % {"n": seconds // 60}
    return _("every %(n)d second(s)") % {"n": seconds}


def _minutes(seconds):
    return _("%(n)d minutes") % {"n": int(seconds) // 60}


def storage_facts():
    """Where the encrypted recordings are kept, from ``STORAGES["recordings"]``; no secrets."""
    config = (getattr(settings, "STORAGES", {}) or {}).get("recordings") or {}
    backend = config.get("BACKEND", "")
    options = config.get("OPTIONS", {}) or {}
    if backend.endswith("FileSystemStorage"):
        return {"kind": "local", "backend": backend}
    if "s3" in backend.lower():
        return {
            "kind": "s3",
            "backend": backend,
            "bucket": options.get("bucket_name")
            or getattr(settings, "AWS_STORAGE_BUCKET_NAME", ""),
            "region": options.get("region_name") or getattr(settings, "AWS_S3_REGION_NAME", ""),
        }
    return {"kind": "other", "backend": backend}


def facts(notice=None):
    """The configuration the measures are written from, as plain data (also in the JSON)."""
    keys = getattr(settings, "RECORDINGS_MASTER_KEYS", None) or []
    anchor_key = getattr(settings, "AUDIT_ANCHOR_KEY", "")
    dev_anchor_key = getattr(settings, "DEV_AUDIT_ANCHOR_KEY", None)
    dev_master_ids = {"dev-1"}
    return {
        "encryption": {
            "algorithm": "AES-256-GCM",
            "envelope": True,
            "master_key_ids": [kid for kid, _key in keys],
            "newest_master_key_id": keys[0][0] if keys else None,
            "development_keys": any(kid in dev_master_ids for kid, _key in keys),
        },
        "retention": [
            {"purpose": announced.purpose.code, "usable_days": announced.days}
            for announced in (
                notice.notice_purposes.select_related("purpose") if notice is not None else []
            )
        ],
        "purge_interval": _beat_interval("recordings.tasks.purge_recordings"),
        "audit": {
            "hash_chain": True,
            "anchor_key_configured": bool(anchor_key) and anchor_key != dev_anchor_key,
            "anchor_interval": _beat_interval("audit.tasks.anchor_audit_trail"),
            "anchor_directory_configured": bool(getattr(settings, "AUDIT_ANCHOR_DIR", "")),
            "runtime_role_separated": bool(getattr(settings, "DATABASE_MIGRATE_CREDENTIALS", None)),
        },
        "twilio_copy_deleted_after_verification": True,
        "reconcile_interval": _beat_interval("recordings.tasks.reconcile_twilio"),
        "storage": storage_facts(),
        "staff": {
            "roles": [SUPERVISOR, COMPLIANCE, OPERATOR],
            "second_factor_roles": list(SECOND_FACTOR_ROLES),
            "login_failure_limit": getattr(settings, "AXES_FAILURE_LIMIT", None),
            "lockout_minutes": (
                int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
                if isinstance(getattr(settings, "AXES_COOLOFF_TIME", None), timedelta)
                else None
            ),
            "idle_timeout_seconds": getattr(settings, "SESSION_IDLE_TIMEOUT", None),
            "session_max_seconds": getattr(settings, "SESSION_COOKIE_AGE", None),
        },
    }


def sections(notice=None, *, summary=None):
    """The measures as titled sections of sentences, in the active language.

    ``summary`` is ``crossborder.public_summary()`` when the caller already has it.
    """
    data = facts(notice)
    encryption, audit, staff = data["encryption"], data["audit"], data["staff"]
    summary = crossborder.public_summary() if summary is None else summary

    key_lines = [
        _(
            "Recordings are stored encrypted with AES-256-GCM. Each recording has its own "
            "random data key, kept only wrapped by a master key (envelope encryption); "
            "unencrypted audio is never written to storage."
        ),
        _("Master keys in use (ids): %(ids)s; new recordings are wrapped by %(newest)s.")
        % {
            "ids": "、".join(encryption["master_key_ids"]) or _not_set(),
            "newest": encryption["newest_master_key_id"] or _not_set(),
        },
        _(
            "Keys are rotated by adding a new master key and re-wrapping every stored "
            "recording's data key with it; each rotation is recorded on the audit trail."
        ),
    ]
    if encryption["development_keys"]:
        key_lines.append(_("A development master key is configured (not for production)."))

    retention_lines = [
        _("%(purpose)s: used for at most %(days)d days from the call.")
        % {"purpose": announced.purpose.name, "days": announced.days}
        for announced in (
            notice.notice_purposes.select_related("purpose") if notice is not None else []
        )
    ] or [_("Retention per purpose: %(value)s") % {"value": _not_set()}]
    retention_lines.append(
        _(
            "A recording no purpose may use any more, and not under a legal hold, is deleted "
            "(its key first, then the file) %(interval)s."
        )
        % {"interval": data["purge_interval"] or _not_set()}
    )

    audit_lines = [
        _(
            "Every playback, download, export and decision about a recording is recorded on "
            "an append-only audit trail in which each event is chained to the previous one "
            "by its hash."
        ),
        _("Signed checkpoints of the trail are written outside the database %(interval)s.")
        % {"interval": audit["anchor_interval"] or _not_set()}
        if audit["anchor_key_configured"]
        else _("Signed checkpoints of the trail outside the database: %(value)s")
        % {"value": _("not set (development key)")},
        _("The application's database account may only add to and read the trail.")
        if audit["runtime_role_separated"]
        else _("Separate database account for changing the trail's tables: %(value)s")
        % {"value": _not_set()},
    ]

    twilio_lines = [
        _(
            "Twilio's copy of a recording is deleted as soon as our encrypted copy is stored "
            "and verified by decrypting it against the downloaded audio."
        ),
        _("Recordings Twilio still holds are compared with ours %(interval)s.")
        % {"interval": data["reconcile_interval"] or _not_set()},
    ]

    storage = data["storage"]
    if storage["kind"] == "local":
        place = _("a local directory of our own server")
    elif storage["kind"] == "s3":
        place = _("Amazon S3, bucket %(bucket)s, region %(region)s") % {
            "bucket": storage["bucket"] or _not_set(),
            "region": storage["region"] or _not_set(),
        }
    else:
        place = storage["backend"] or _not_set()
    storage_lines = [_("Encrypted recordings are stored in %(place)s.") % {"place": place}]

    limit = staff["login_failure_limit"]
    staff_lines = [
        _("Staff have one of three roles (%(roles)s); each role may do only what it needs.")
        % {"roles": "、".join(staff["roles"])},
        _("%(roles)s sign in with a password and a second factor (one-time code).")
        % {"roles": "、".join(staff["second_factor_roles"])},
        _("After %(limit)s wrong passwords an account is locked for %(minutes)s minutes.")
        % {
            "limit": limit if limit is not None else _not_set(),
            "minutes": staff["lockout_minutes"]
            if staff["lockout_minutes"] is not None
            else _not_set(),
        },
        _("A staff session ends after %(idle)s without use.")
        % {
            "idle": _minutes(staff["idle_timeout_seconds"])
            if staff["idle_timeout_seconds"]
            else _not_set()
        },
    ]

    environment_lines = [
        _("%(recipient)s (%(country)s): %(services)s. Basis: %(basis)s.") % row for row in summary
    ] or [_("Personal data handled in a foreign country: %(value)s") % {"value": _not_set()}]
    environment_lines += [row["country_regime"] for row in summary if row["country_regime"]]

    return [
        {
            "key": "encryption",
            "title": _("Encryption of recordings and key management"),
            "lines": key_lines,
        },
        {"key": "retention", "title": _("Retention per purpose"), "lines": retention_lines},
        {"key": "audit", "title": _("Audit trail"), "lines": audit_lines},
        {"key": "twilio", "title": _("Deletion at the provider"), "lines": twilio_lines},
        {"key": "storage", "title": _("Where recordings are stored"), "lines": storage_lines},
        {"key": "staff", "title": _("Staff access controls"), "lines": staff_lines},
        {
            "key": "environment",
            "title": _("Understanding the external environment (foreign countries)"),
            "lines": environment_lines,
        },
    ]


def sections_in(language, notice=None, *, summary=None):
    with translation.override(language):
        return [
            {**section, "title": str(section["title"]), "lines": [str(x) for x in section["lines"]]}
            for section in sections(notice, summary=summary)
        ]
