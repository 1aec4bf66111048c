"""Writing, publishing and comparing use-purpose notices."""

import difflib
import re
import threading
import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import require

from . import organisation
from .models import CrossBorderRecipient, Notice, NoticePurpose

# How long a process may keep using its list of published notices before reading it again.
# Published notices never change, so the list can only be missing one published in the
# last few seconds, and a call answered meanwhile is recorded with the notice it heard.
NOTICE_CACHE_SECONDS = 5
_published_cache = threading.local()


def _published_notices():
    """Published notices, newest first, read at most every NOTICE_CACHE_SECONDS per thread."""
    now = time.monotonic()
    if getattr(_published_cache, "expires", 0) <= now:
        _published_cache.notices = list(Notice.objects.published().order_by("-effective_from"))
        _published_cache.expires = now + NOTICE_CACHE_SECONDS
    return _published_cache.notices


def forget_published_notices():
    """Read the published notices again on next use (after a publication, and in tests)."""
    _published_cache.expires = 0


def notice_in_force(at=None):
    """The notice in force at ``at`` (default now), served from the cache of published notices.

    Webhooks answer every call with it, so it must cost nothing. A scheduled version takes
    effect exactly on time, since the cache holds every published version with its date.
    """
    at = at or timezone.now()
    return next((n for n in _published_notices() if n.effective_from <= at), None)


def published_notice(version):
    """One published version, by number, from the same cache (None if there is none)."""
    return next((n for n in _published_notices() if n.version == version), None) or (
        Notice.objects.published().filter(version=version).first()
    )


# Announcements longer than this keep callers waiting before they reach anyone.
ANNOUNCEMENT_LIMIT_SECONDS = 30
# Typical text-to-speech pace: about 330 Japanese characters a minute, 150 English words.
JAPANESE_CHARACTERS_PER_SECOND = 5.5
ENGLISH_WORDS_PER_SECOND = 2.5


def compose_announcement(*, purposes, language):
    """The script read at the start of a call, written from the purposes a notice announces.

    It says what the guideline and the law require be said (DESIGN.md R2): that the call is
    recorded, for which purposes, that a third party (Twilio) carries and stores it, and
    where the full notice is published.
    """
    if language.startswith("en"):
        names = [purpose.name_en for purpose in purposes]
        listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
        return (
            f"This call will be recorded for the following purposes: {listed}. "
            "The call is carried and stored by Twilio, a third-party communications provider. "
            "Our privacy notice on our website explains how recordings are used."
        )
    listed = "、".join(purpose.name_ja for purpose in purposes)
    return (
        f"このお電話は、{listed}のため、録音させていただきます。"
        "通話は、通信事業者である米国トゥイリオ社のサービスで伝送・保存されます。"
        "録音の利用目的と取り扱いは、当社ウェブサイトのプライバシー通知に掲載しています。"
    )


def estimate_speech_seconds(text, language):
    """Roughly how long a text-to-speech voice takes to read ``text``."""
    if language.startswith("en"):
        return len(text.split()) / ENGLISH_WORDS_PER_SECOND
    spoken = re.sub(r"[\s、。・「」（）()!?！？.,]", "", text)
    return len(spoken) / JAPANESE_CHARACTERS_PER_SECOND


@dataclass(frozen=True)
class AnnouncementCheck:
    language: str
    text: str
    seconds: float

    @property
    def too_long(self):
        return self.seconds > ANNOUNCEMENT_LIMIT_SECONDS


# The provider every announcement must name, as it is written in either language.
PROVIDER_NAMES = ("Twilio", "トゥイリオ")


def announcement_omissions(text, *, language, purposes):
    """What ``text``, read to callers in ``language``, leaves out: the names of the
    ``purposes`` it does not say, then "Twilio" if it does not name the provider.

    A caller consents to what they heard: the script must name every purpose a recording
    made under the notice will be used for, and the third party that carries and stores it.
    """
    english = language.startswith("en")
    heard = text.casefold()
    names = [purpose.name_en if english else purpose.name_ja for purpose in purposes]
    missing = [name for name in names if name.casefold() not in heard]
    if not any(provider.casefold() in heard for provider in PROVIDER_NAMES):
        missing.append("Twilio")
    return missing


def check_announcements(notice):
    """The announcement of each language with its estimated speaking time."""
    purposes = [np.purpose for np in notice.notice_purposes.select_related("purpose")]
    checks = []
    for language in ("ja", "en"):
        text = notice.announcement(language)
        if not text and purposes:
            text = compose_announcement(purposes=purposes, language=language)
        checks.append(AnnouncementCheck(language, text, estimate_speech_seconds(text, language)))
    return checks


def notice_warnings(notice):
    """Things worth a second look before publishing that do not prevent it."""
    warnings = []
    for check in check_announcements(notice):
        if check.too_long:
            warnings.append(
                _(
                    "The %(language)s announcement takes about %(seconds)d seconds to read; "
                    "keep it under %(limit)d seconds so callers are not kept waiting."
                )
                % {
                    "language": _("Japanese") if check.language == "ja" else _("English"),
                    "seconds": round(check.seconds),
                    "limit": ANNOUNCEMENT_LIMIT_SECONDS,
                }
            )
    if not notice.body_en.strip():
        warnings.append(
            _("There is no English body; the English page will show the Japanese text.")
        )
    return warnings


def notice_problems(notice):
    """Reasons a draft cannot be published yet, as messages a person can act on."""
    problems = []
    if not notice.notice_purposes.exists():
        problems.append(_("Choose at least one purpose."))
    if not notice.body_ja.strip():
        problems.append(_("Write the Japanese body of the notice."))
    if not notice.provider_statement_ja.strip():
        problems.append(_("Say which third-party provider carries and stores calls."))
    purposes = [np.purpose for np in notice.notice_purposes.select_related("purpose")]
    for check in check_announcements(notice) if purposes else ():
        missing = announcement_omissions(check.text, language=check.language, purposes=purposes)
        if missing:
            problems.append(
                _(
                    "The %(language)s announcement callers hear does not name %(missing)s. "
                    "Callers consent to what they hear: name every purpose and the provider "
                    "(Twilio) in it, or empty it to have it written from the purposes."
                )
                % {
                    "language": _("Japanese") if check.language == "ja" else _("English"),
                    "missing": "、".join(f"「{name}」" for name in missing),
                }
            )
    problems.extend(public_matters_problems())
    return problems


def public_matters_problems():
    """What the public page must state under APPI art. 32 and 28 that is not configured yet.

    Calls are always carried by Twilio Inc. in the United States, so the cross-border
    register must name at least one recipient before any notice can be published.
    """
    missing = organisation.missing_items()
    if not CrossBorderRecipient.objects.exists():
        missing.append(_("a recipient in the cross-border register (Twilio Inc., United States)"))
    if not missing:
        return []
    return [
        _(
            "The public page must state every item APPI art. 32 requires. Missing: "
            "%(missing)s. Fill them in under Organisation and the cross-border register."
        )
        % {"missing": "、".join(f"「{item}」" for item in missing)}
    ]


def fill_announcements(notice):
    """Write the announcement scripts from the purposes where they are left empty."""
    purposes = [np.purpose for np in notice.notice_purposes.select_related("purpose")]
    if not purposes:
        return
    changed = []
    for language in ("ja", "en"):
        field = f"announcement_{language}"
        if not getattr(notice, field).strip():
            setattr(notice, field, compose_announcement(purposes=purposes, language=language))
            changed.append(field)
    if changed:
        notice.save(update_fields=changed)


PUBLISH = "privacy.publish_notice"


def publish_notice(*, notice, by, effective_from=None):
    """Publish a draft as the next version; it takes effect at ``effective_from`` (default now).

    Guarantees: versions are consecutive (v1, v2, …) and take effect in version order, never
    in the past, so the answer to "which notice was in force at time T" never changes for a
    T that has passed. The announced purposes' usable days are copied at this moment. Two
    supervisors publishing at once cannot both succeed. Staff (``by``) publish only if their
    role allows it (``NotAllowed`` otherwise, nothing changes); ``by=None`` is the system.
    """
    if by is not None:
        require(by, PUBLISH, _("Your role does not allow publishing notices."))
    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now - timezone.timedelta(minutes=1):
        raise ValidationError(_("A notice cannot take effect in the past."))
    with transaction.atomic():
        # Checked on the locked row, not on the caller's copy: the announcement callers will
        # hear is the one stored now, and its purposes cannot change until we commit (see
        # NoticePurpose.save).
        locked = Notice.objects.select_for_update().get(pk=notice.pk)
        problems = notice_problems(locked)
        if problems:
            raise ValidationError(problems)
        latest = Notice.objects.published().select_for_update().order_by("-version").first()
        if latest and effective_from <= latest.effective_from:
            raise ValidationError(
                _("It must take effect after %(version)s, which takes effect at %(at)s.")
                % {
                    "version": latest,
                    "at": timezone.localtime(latest.effective_from).strftime("%Y-%m-%d %H:%M"),
                }
            )
        fill_announcements(locked)
        for announced in locked.notice_purposes.select_related("purpose"):
            NoticePurpose.objects.filter(pk=announced.pk).update(
                retention_days=announced.purpose.retention_days,
                allows_training_review=announced.purpose.allows_training_review,
            )
        version = (latest.version + 1) if latest else 1
        try:
            claimed = Notice.objects.filter(pk=notice.pk, status=Notice.Status.DRAFT).update(
                status=Notice.Status.PUBLISHED,
                version=version,
                effective_from=effective_from,
                published_at=now,
                published_by=by,
            )
        except IntegrityError:
            claimed = 0
        if claimed != 1:
            raise ValidationError(_("This notice was published or changed by someone else."))
        audit.record(AccessEvent.Action.NOTICE_PUBLISHED, actor=by, detail={"version": version})
    transaction.on_commit(forget_published_notices)
    notice.refresh_from_db()
    return notice


def new_draft_from(*, notice):
    """A draft that starts as a copy of ``notice``: the way to correct a published version."""
    with transaction.atomic():
        draft = Notice.objects.create(
            **{
                field: getattr(notice, field)
                for field in (
                    "title_ja",
                    "title_en",
                    "body_ja",
                    "body_en",
                    "provider_statement_ja",
                    "provider_statement_en",
                    "contact_ja",
                    "contact_en",
                    "announcement_ja",
                    "announcement_en",
                )
            }
        )
        NoticePurpose.objects.bulk_create(
            NoticePurpose(notice=draft, purpose_id=announced.purpose_id)
            for announced in notice.notice_purposes.all()
        )
    return draft


COMPARED_FIELDS = [
    "title_ja",
    "title_en",
    "body_ja",
    "body_en",
    "provider_statement_ja",
    "provider_statement_en",
    "contact_ja",
    "contact_en",
    "announcement_ja",
    "announcement_en",
]


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: list  # (kind, text) with kind one of " ", "-", "+"

    @property
    def changed(self):
        return any(kind != " " for kind, _text in self.lines)


def purpose_lines(notice):
    return [
        f"{np.purpose.code}: {np.purpose.name_ja} / {np.purpose.name_en} — "
        f"{np.days} {_('days')}, {_('training review')}: {_('yes') if np.training else _('no')}"
        for np in notice.notice_purposes.select_related("purpose")
    ]


def diff_notices(old, new):
    """What changed from ``old`` to ``new``, field by field, line by line."""
    diffs = []
    pairs = [
        (_("purposes"), purpose_lines(old), purpose_lines(new)),
        *(
            (
                str(Notice._meta.get_field(name).verbose_name),
                getattr(old, name).splitlines(),
                getattr(new, name).splitlines(),
            )
            for name in COMPARED_FIELDS
        ),
    ]
    for label, before, after in pairs:
        lines = [
            (line[0], line[2:]) for line in difflib.ndiff(before, after) if not line.startswith("?")
        ]
        diffs.append(FieldDiff(label, lines))
    return diffs
