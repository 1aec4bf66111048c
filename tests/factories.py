import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from contactcenter.models import Call, Customer, Operator
from contactcenter.phones import CallerIdStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass")
    is_staff = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get(name=name))


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator

    user = factory.SubFactory(UserFactory)
    display_name = factory.Sequence(lambda n: f"オペレーター{n}")
    routing_address = factory.Sequence(lambda n: f"+8190{n:08d}")
    availability = Operator.Availability.AVAILABLE


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    phone_number = factory.Sequence(lambda n: f"+8180{n:08d}")
    caller_id_status = CallerIdStatus.PRESENTED


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    sid = factory.Sequence(lambda n: f"CA{n:032x}")
    customer = factory.SubFactory(CustomerFactory)
    operator = factory.SubFactory(OperatorFactory)
    from_number = factory.SelfAttribute("customer.phone_number")
    to_number = "+815012345678"
    status = Call.Status.COMPLETED
    duration = 120


class PurposeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "privacy.Purpose"
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"purpose-{n}")
    name_ja = factory.Sequence(lambda n: f"目的{n}")
    name_en = factory.Sequence(lambda n: f"Purpose {n}")
    description_ja = "説明"
    description_en = "Description"
    retention_days = 365
    allows_training_review = False


class NoticeFactory(factory.django.DjangoModelFactory):
    """A draft notice; pass ``purposes=[…]`` to announce purposes."""

    class Meta:
        model = "privacy.Notice"
        skip_postgeneration_save = True

    body_ja = "当社は、お客様との通話を録音します。"
    body_en = "We record calls with our customers."
    contact_ja = "お客様相談窓口 0120-000-000"
    contact_en = "Customer desk 0120-000-000"

    @factory.post_generation
    def purposes(self, create, extracted, **kwargs):
        from privacy.models import NoticePurpose

        complete_organisation()  # so that the notice can be published (art. 32 items)
        for purpose in extracted or ():
            NoticePurpose.objects.create(notice=self, purpose=purpose)


def complete_organisation():
    """The organisation settings and a cross-border recipient, as publishing requires."""
    from privacy.models import CrossBorderRecipient, Organisation

    organisation, _created = Organisation.objects.get_or_create(
        singleton=1,
        defaults={
            "legal_name_ja": "株式会社サンプルコールセンター",
            "address_ja": "東京都千代田区丸の内一丁目1番1号",
            "representative_title_ja": "代表取締役",
            "representative_name_ja": "山田太郎",
            "complaint_department_ja": "お客様相談窓口",
            "complaint_phone": "0120-000-000",
            "complaint_email": "privacy@example.jp",
            "complaint_hours_ja": "平日 9:00〜17:00",
        },
    )
    if not CrossBorderRecipient.objects.exists():
        CrossBorderRecipient.objects.create(
            recipient="Twilio Inc.",
            country_ja="米国",
            services_ja="音声通話・録音・SMS",
            measures_ja="データ処理契約（DPA）を締結し、ISO/IEC 27001 認証を確認しています。",
        )
    return organisation


def published_notice(*, purposes, effective_from=None, by=None):
    """A notice published through the service, as a supervisor would."""
    from privacy.services import publish_notice

    return publish_notice(
        notice=NoticeFactory(purposes=purposes), by=by, effective_from=effective_from
    )


def recording_notice():
    """A published notice announcing quality (30 days) and training (90 days, reviewable)."""
    return published_notice(
        purposes=[
            PurposeFactory(code="quality", name_ja="品質向上", retention_days=30),
            PurposeFactory(
                code="training", name_ja="研修", retention_days=90, allows_training_review=True
            ),
        ]
    )


def consented_call(operator, **fields):
    """A call answered by ``operator`` whose caller pressed 1 to consent."""
    from consent.models import ConsentRecord
    from consent.services import record_consent

    call = CallFactory(operator=operator, **fields)
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.GRANTED,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        digits="1",
        recorded_by_system="twilio-ivr",
    )
    return call


def stored_recording(operator, *, audio):
    """A consented call's recording of ``audio``, stored encrypted as the pipeline stores it."""
    from recordings import ingest
    from recordings.models import Recording

    call = consented_call(operator)
    recording = Recording.objects.create(
        sid="RE" + call.sid[2:], call=call, status=Recording.Status.COMPLETED, channels=2
    )
    return ingest.store_audio(recording, [audio])
