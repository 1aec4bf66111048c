"""The business behind the recordings, as APPI art. 32 asks it be made public.

Other apps read it through two functions: ``current()`` (the one ``Organisation`` row, or an
unsaved one with empty fields before anybody filled it in) and ``fee_for(kind)``, the fee in
yen a request of that kind costs (0: free).
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import require

from .models import Organisation


@dataclass(frozen=True)
class RequestKind:
    code: str
    label: object  # a lazy translation
    article: str
    # The Organisation field holding its fee; None: art. 38 allows no fee for this kind.
    fee_field: str | None = None


# Every kind of request a caller can make, in the order the public page lists them. Art. 38
# lets a business charge only for the notification of purposes (32(2)) and for disclosure
# (33(1), and 33(5) for the records of provision to third parties); everything else is free.
REQUEST_KINDS = [
    RequestKind(
        "purpose_notice",
        gettext_lazy("Notification of the purposes of use"),
        "32(2)",
        "fee_purpose_notice",
    ),
    RequestKind("hear", gettext_lazy("Disclosure: listening to a recording"), "33(1)", "fee_hear"),
    RequestKind("copy", gettext_lazy("Disclosure: a copy of a recording"), "33(1)", "fee_copy"),
    RequestKind("correct", gettext_lazy("Correction of the data about a call"), "34"),
    RequestKind("suspend", gettext_lazy("Suspension of use"), "35(1)"),
    RequestKind("delete", gettext_lazy("Deletion"), "35(1)"),
    RequestKind("stop_provision", gettext_lazy("Stopping provision to third parties"), "35(3)"),
    RequestKind(
        "provision_records",
        gettext_lazy("Disclosure of the records of provision to third parties"),
        "33(5)",
        "fee_provision_records",
    ),
    RequestKind(
        "cross_border",
        gettext_lazy("Information on the measures of recipients in a foreign country"),
        "28(3)",
    ),
    RequestKind("withdraw", gettext_lazy("Withdrawal of consent to recording"), "—"),
]
KINDS = {kind.code: kind for kind in REQUEST_KINDS}

CHANGE = "privacy.change_organisation"


def current():
    """The Organisation row, or an unsaved one with empty fields if none was saved yet."""
    return Organisation.objects.filter(singleton=1).first() or Organisation()


def fee_for(kind_code, organisation=None):
    """The fee in yen for a request of ``kind_code``: 0 when free, unknown or not chargeable."""
    kind = KINDS.get(kind_code)
    if kind is None or kind.fee_field is None:
        return 0
    organisation = organisation or current()
    if organisation.pk is None:
        return 0
    return getattr(organisation, kind.fee_field) or 0


def fee_display(amount):
    """「無料」 for 0, else the amount in yen as the page shows it."""
    if not amount:
        return _("Free")
    return _("%(amount)s yen (tax included)") % {"amount": f"{amount:,}"}


def fees(organisation=None):
    """Each request kind with its fee, for the public page and the notice JSON."""
    organisation = organisation or current()
    return [
        {
            "kind": kind,
            "amount": fee_for(kind.code, organisation),
            "display": fee_display(fee_for(kind.code, organisation)),
            "chargeable": kind.fee_field is not None,
        }
        for kind in REQUEST_KINDS
    ]


def missing_items(organisation=None):
    """What art. 32 requires that the organisation settings do not say yet, as messages."""
    organisation = organisation or current()
    missing = []
    if organisation.pk is None:
        missing.append(_("the organisation settings have not been saved (fees are not decided)"))
    if not organisation.legal_name_ja.strip():
        missing.append(_("the legal name"))
    if not organisation.address_ja.strip():
        missing.append(_("the address"))
    if not (
        organisation.representative_name_ja.strip() and organisation.representative_title_ja.strip()
    ):
        missing.append(_("the representative's name and title"))
    if not (
        organisation.complaint_department_ja.strip()
        and (organisation.complaint_phone.strip() or organisation.complaint_email.strip())
    ):
        missing.append(_("the complaint contact (department and a phone number or email)"))
    return missing


def update_organisation(*, organisation, by, changed_fields):
    """Save the organisation settings changed by ``by`` and put the change on the audit trail.

    Only roles that hold ``privacy.change_organisation`` (supervisors and compliance
    officers) may change what the business publishes about itself.
    """
    require(by, CHANGE, _("Your role does not allow changing the organisation settings."))
    organisation.singleton = 1
    organisation.updated_by = by
    if not organisation.pk:
        stored = Organisation.objects.filter(singleton=1).values_list("pk", flat=True).first()
        if stored is not None:
            raise ValidationError(_("The organisation settings were saved by someone else."))
    with transaction.atomic():
        organisation.save()
        audit.record(
            AccessEvent.Action.ORGANISATION_CHANGED,
            actor=by,
            detail={"fields": sorted(changed_fields)},
        )
    return organisation
