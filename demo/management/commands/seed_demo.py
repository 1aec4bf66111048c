"""Fill the database with a believable demo: staff in each role, the published notice and
its purposes, customers, calls and the consent given on them, and a few recordings with
generated audio, encrypted and stored like real ones.

Idempotent: every row has a natural key (username, phone number, CallSid), so running the
command again finds what is there and changes nothing. Passwords are set only when an
account is created.
"""

import hashlib
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from consent.services import acknowledge_recording, may_record, record_consent
from contactcenter.models import Call, Customer, Operator
from contactcenter.phones import CallerIdStatus
from contactcenter.roles import COMPLIANCE, OPERATOR, SUPERVISOR
from incidents.demo import create_demo_incident
from incidents.models import Incident
from privacy import crossborder
from privacy.models import CrossBorderRecipient, Notice, NoticePurpose, Organisation, Purpose
from privacy.services import publish_notice
from recordings import provision
from recordings.ingest import store_audio
from recordings.models import ProvisionRecord, Recording
from staff.services import enrol_with_key
from training.services import mark_training_material
from twilio_emulator.server import synthetic_wav

STAFF = [
    # username, password, role, last name, first name
    ("supervisor", "demo-supervisor-pass", SUPERVISOR, "佐藤", "美咲"),
    ("compliance", "demo-compliance-pass", COMPLIANCE, "高橋", "健"),
    ("operator1", "demo-operator1-pass", OPERATOR, "田中", "一郎"),
    ("operator2", "demo-operator2-pass", OPERATOR, "鈴木", "花子"),
    ("operator3", "demo-operator3-pass", OPERATOR, "伊藤", "翔太"),
]
# The demo supervisor's and compliance officer's TOTP keys (hex). Published on purpose, like
# the passwords: `manage.py demo_totp USERNAME` prints the current code.
DEMO_TOTP_KEYS = {
    "supervisor": b"demo-supervisor-totp".hex(),
    "compliance": b"demo-compliance-totp".hex(),
}

OPERATOR_ROUTES = {
    "operator1": ("+819011110001", Operator.Availability.AVAILABLE),
    "operator2": ("sip:suzuki@pbx.example.jp", Operator.Availability.AVAILABLE),
    "operator3": ("+819011110003", Operator.Availability.AWAY),
}

CUSTOMERS = [
    ("+81312345678", "山本 太郎"),
    ("+81662345678", "中村 由美"),
    ("+819022223333", "小林 誠"),
    ("+818033334444", ""),
    ("+14155550123", "Alex Smith"),
]

CENTER_NUMBER = "+815012345678"
DEMO_CALLS = 16
WITHHELD_CALL = 7  # this demo call comes from a caller who withheld their number
REFUSED_CALL = 4  # on this call the caller pressed 2: not recorded
DEMO_RECORDINGS = 5  # the newest answered, consented calls get a stored recording

PURPOSES = [
    {
        "code": "quality",
        "name_ja": "品質向上",
        "name_en": "service quality",
        "description_ja": "応対の品質を評価し、サービスの改善に役立てるため。",
        "description_en": "To assess how we answer calls and improve our service.",
        "retention_days": 365,
        "allows_training_review": False,
    },
    {
        "code": "training",
        "name_ja": "研修",
        "name_en": "operator training",
        "description_ja": "オペレーターの教育・研修の教材として利用するため。",
        "description_en": "As material for training our operators.",
        "retention_days": 90,
        "allows_training_review": True,
    },
    {
        "code": "evidence",
        "name_ja": "応対内容の確認・紛争対応",
        "name_en": "confirming what was said and resolving disputes",
        "description_ja": "お申し出の内容を正確に確認し、トラブルや紛争の際に事実を確かめるため。",
        "description_en": "To confirm exactly what was asked and agreed, and to settle disputes.",
        "retention_days": 3 * 365,
        "allows_training_review": False,
    },
]

NOTICE_BODY_JA = """当社のお客様相談窓口では、お客様との通話を録音しています。録音は下記の利用目的の範囲内でのみ利用し、目的ごとに定めた期間が過ぎたものは、通信事業者の設備に残るものも含めて削除します。

通話の冒頭で録音とその目的をお知らせし、同意をいただいた場合にのみ録音します。同意いただけない場合も、録音せずにおつなぎします。

録音の聴取、写しの提供、削除、利用停止、同意の撤回をご希望の場合は、下記の窓口または「録音に関するご請求」のページからお申し出ください。"""

NOTICE_BODY_EN = """Our customer desk records calls with customers. Recordings are used only for the purposes below, and each is deleted once the period set for its purposes has passed, including any copy left with our communications provider.

At the start of each call we say that it is recorded and why, and we record only if you agree. If you do not agree, we connect you without recording.

To hear a recording, receive a copy, have it deleted or its use stopped, or withdraw your consent, contact the desk below or use the "Requests about your recordings" page."""

NOTICE_CONTACT_JA = "株式会社サンプル お客様相談窓口\n電話 0120-000-000（平日 9:00〜18:00）\nメール privacy@example.jp"
NOTICE_CONTACT_EN = "Sample K.K. customer desk\nPhone 0120-000-000 (weekdays 9:00–18:00 JST)\nEmail privacy@example.jp"


def demo_call_sid(index):
    return "CA" + hashlib.sha256(f"demo-call-{index}".encode()).hexdigest()[:32]


class Command(BaseCommand):
    help = "Load demo staff, customers and calls (idempotent). Refused when DEBUG is off."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load demo accounts even with DEBUG off (their passwords are public).",
        )

    def handle(self, *args, allow_production=False, **options):
        if settings.IS_PRODUCTION and not allow_production:
            raise CommandError(
                "seed_demo creates accounts with published passwords; it refuses to run with "
                "DEBUG off. Pass --allow-production if this really is a demo installation."
            )
        with transaction.atomic():
            users = self.seed_staff()
            self.seed_public_matters(users["supervisor"])
            notice = self.seed_notice(users["supervisor"])
            operators = self.seed_operators(users)
            customers = self.seed_customers()
            created_calls = self.seed_calls(operators, customers, notice)
        # Encrypting and writing the audio files is slow I/O: it runs after the rows commit.
        created_recordings = self.seed_recordings()
        self.seed_provision()
        self.seed_incident()
        self.print_summary(created_calls, created_recordings)

    def seed_public_matters(self, supervisor):
        """The business as APPI art. 32 asks it to be published, and Twilio in the register of
        recipients in a foreign country (a notice cannot be published without them)."""
        Organisation.objects.get_or_create(
            singleton=1,
            defaults={
                "legal_name_ja": "株式会社デモコンタクトセンター",
                "legal_name_en": "Demo Contact Center K.K.",
                "address_ja": "東京都千代田区丸の内一丁目1番1号",
                "address_en": "1-1-1 Marunouchi, Chiyoda-ku, Tokyo",
                "representative_title_ja": "代表取締役",
                "representative_name_ja": "山田太郎",
                "complaint_department_ja": "お客様相談窓口（個人情報担当）",
                "complaint_phone": "0120-000-000",
                "complaint_email": "privacy@example.jp",
                "complaint_hours_ja": "平日 9:00〜17:00（祝日・年末年始を除く）",
                # The fees stay 0 (無料): saving the row is that decision.
            },
        )
        twilio, created = CrossBorderRecipient.objects.get_or_create(
            recipient="Twilio Inc.",
            defaults={
                "country_ja": "米国",
                "services_ja": "音声通話の伝送・録音・SMS・電話番号の確認（Verify）",
                "basis": CrossBorderRecipient.Basis.EQUIVALENT_MEASURES,
                "measures_ja": (
                    "Twilio Inc. とデータ処理契約（Data Protection Addendum）を締結し、個人データを"
                    "委託の目的以外に取り扱わないこと、安全管理措置、再委託先の管理、漏えい時の"
                    "通知を義務付けています。同社の ISO/IEC 27001 認証と SOC 2 Type II 報告書を"
                    "確認しています。"
                ),
                "country_regime_ja": (
                    "米国には連邦レベルの包括的な個人情報保護法はなく、分野ごとの連邦法と州法"
                    "（カリフォルニア州消費者プライバシー法など）が適用されます（個人情報保護委員会"
                    "の「外国における個人情報の保護に関する制度等の調査」による）。"
                ),
                "evidence": (
                    "Twilio Data Protection Addendum "
                    "https://www.twilio.com/legal/data-protection-addendum\n"
                    "Twilio Trust Center（ISO/IEC 27001, SOC 2） https://www.twilio.com/trust-center"
                ),
            },
        )
        if created:
            # Checked 11 months ago: the register shows a date, and the reminder (due within
            # 30 days) goes out on the next beat run, so the demo shows that too.
            crossborder.record_check(
                recipient=twilio,
                by=supervisor,
                checked_on=timezone.localdate() - timedelta(days=335),
                scope="DPA の有効性、ISO/IEC 27001 認証書、SOC 2 Type II 報告書",
                result="confirmed",
            )

    def seed_incident(self):
        """The supervisor listened to two recordings, then lost the laptop that was logged in
        (``incidents.demo``): a reportable incident whose 速報 and 確報 deadlines are on the
        dashboard."""
        if Incident.objects.exists():
            return
        staff = get_user_model().objects
        supervisor = staff.get(username="supervisor")
        stored = Recording.objects.filter(status=Recording.Status.STORED)
        for recording in stored.order_by("-call__started_at")[:2]:
            audit.record(
                AccessEvent.Action.PLAYBACK,
                actor=supervisor,
                recording=recording,
                purpose="quality",
                detail={"channel": "player"},
            )
        create_demo_incident(officer=staff.get(username="compliance"), supervisor=supervisor)

    def seed_provision(self):
        """One hand-over to a lawyer, through the ledger, of a recording of 090-2222-3333 (the
        README's caller), so that the caller can ask to see the provision records."""
        if ProvisionRecord.objects.exists():
            return
        recording = (
            Recording.objects.filter(
                call__customer__phone_number="+819022223333", status=Recording.Status.STORED
            )
            .order_by("-call__started_at")
            .first()
        )
        if recording is None:
            return
        provision.provide(
            recording,
            by=get_user_model().objects.get(username="supervisor"),
            recipient="山田法律事務所 弁護士 山田一郎",
            recipient_kind=ProvisionRecord.RecipientKind.LAWYER,
            recipient_address="東京都千代田区霞が関1-1-1 霞が関ビル5階",
            items=[ProvisionRecord.Item.AUDIO, ProvisionRecord.Item.CALL],
            basis=ProvisionRecord.Basis.CONSENT,
            consent_method=ProvisionRecord.ConsentMethod.WRITTEN,
            consent_obtained_at=timezone.localdate(),
            consent_statement="お客様から署名済みの同意書を受領（監督者が確認）。原本は法務部で保管。",
            note="損害賠償請求の交渉資料として",
        )

    def seed_notice(self, supervisor):
        purposes = [
            Purpose.objects.get_or_create(code=values["code"], defaults=values)[0]
            for values in PURPOSES
        ]
        existing = Notice.objects.published().order_by("version").first()
        if existing:
            return existing
        draft = Notice.objects.create(
            body_ja=NOTICE_BODY_JA,
            body_en=NOTICE_BODY_EN,
            contact_ja=NOTICE_CONTACT_JA,
            contact_en=NOTICE_CONTACT_EN,
        )
        for purpose in purposes:
            NoticePurpose.objects.create(notice=draft, purpose=purpose)
        notice = publish_notice(notice=draft, by=supervisor)
        # The demo's history starts months ago, before its calls. The publication service
        # refuses past dates on purpose, so only here the dates are moved back afterwards.
        past = timezone.now().replace(microsecond=0) - timedelta(days=120)
        Notice.objects.filter(pk=notice.pk).update(effective_from=past, published_at=past)
        notice.refresh_from_db()
        return notice

    def seed_staff(self):
        user_model = get_user_model()
        users = {}
        for username, password, role, last_name, first_name in STAFF:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "last_name": last_name,
                    "first_name": first_name,
                    "email": f"{username}@example.jp",
                    "is_staff": True,
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
            if username in DEMO_TOTP_KEYS and not user_has_device(user):
                enrol_with_key(user=user, key_hex=DEMO_TOTP_KEYS[username])
            users[username] = user
        return users

    def seed_operators(self, users):
        operators = []
        for username, (route, availability) in OPERATOR_ROUTES.items():
            user = users[username]
            operator, _ = Operator.objects.get_or_create(
                user=user,
                defaults={
                    "display_name": f"{user.last_name} {user.first_name}",
                    "routing_address": route,
                    "availability": availability,
                },
            )
            acknowledge_recording(
                operator=operator,
                by=None,
                method=ConsentRecord.Method.CONTRACT,
                at=timezone.now().replace(microsecond=0) - timedelta(days=60),
            )
            operator.refresh_from_db()
            operators.append(operator)
        return operators

    def seed_customers(self):
        return [
            Customer.objects.get_or_create(phone_number=number, defaults={"name": name})[0]
            for number, name in CUSTOMERS
        ]

    def seed_calls(self, operators, customers, notice):
        now = timezone.now().replace(microsecond=0)
        existing = set(Call.objects.filter(sid__startswith="CA").values_list("sid", flat=True))
        created = 0
        for index in range(DEMO_CALLS):
            sid = demo_call_sid(index)
            if sid in existing:
                continue
            # A seed per call gives the same calls on every machine.
            rng = random.Random(index)
            started = now - timedelta(
                days=index, hours=rng.randint(0, 8), minutes=rng.randint(0, 59)
            )
            answered = rng.random() > 0.15
            # Up to three minutes, so that each recording is as long as its call and the seed
            # stays fast.
            duration = rng.randint(60, 180)
            operator = rng.choice(operators)
            customer = rng.choice(customers)
            if index == WITHHELD_CALL:
                customer = Customer.objects.create(caller_id_status=CallerIdStatus.WITHHELD)
            call = Call.objects.create(
                sid=sid,
                direction=Call.Direction.INBOUND,
                from_number=customer.phone_number or "anonymous",
                to_number=CENTER_NUMBER,
                customer=customer,
                operator=operator if answered else None,
                status=Call.Status.COMPLETED if answered else Call.Status.NO_ANSWER,
                started_at=started,
                answered_at=started + timedelta(seconds=12) if answered else None,
                ended_at=started + timedelta(seconds=(12 + duration) if answered else 40),
                duration=duration if answered else 0,
                last_sequence_number=3 if answered else 2,
            )
            self.seed_consent(call, notice, refused=index == REFUSED_CALL)
            created += 1
        return created

    def seed_consent(self, call, notice, *, refused):
        """The caller's answer to the announcement, as the IVR records it."""
        digits = "2" if refused else "1"
        record_consent(
            customer=call.customer,
            call=call,
            party_role=ConsentRecord.PartyRole.CALLER,
            decision=ConsentRecord.Decision.REFUSED if refused else ConsentRecord.Decision.GRANTED,
            method=ConsentRecord.Method.IVR_KEYPRESS,
            notice=notice,
            announcement_text=notice.announcement_ja,
            digits=digits,
            recorded_by_system="twilio-ivr",
            source_request={"CallSid": call.sid, "Digits": digits},
            at=call.started_at + timedelta(seconds=9),
        )

    def seed_recordings(self):
        """Recordings of the newest consented calls, with generated two-channel audio (a tone
        on each side), encrypted and stored exactly like fetched ones."""
        recorded = 0
        calls = Call.objects.filter(
            sid__in=[demo_call_sid(index) for index in range(DEMO_CALLS)],
            status=Call.Status.COMPLETED,
        ).order_by("-started_at")
        for call in calls:
            if recorded >= DEMO_RECORDINGS or not may_record(call=call):
                continue
            recorded += 1
            sid = "RE" + call.sid[2:]
            if Recording.objects.filter(sid=sid).exists():
                continue
            recording = Recording.objects.create(
                sid=sid,
                call=call,
                status=Recording.Status.COMPLETED,
                duration=call.duration,
                channels=2,
                source="DialVerb",
                started_at=call.answered_at,
                # There is no copy at Twilio to delete.
                twilio_deleted_at=call.ended_at,
            )
            # As a real call leaves it: the recording was asked for and ran until the end.
            Call.objects.filter(pk=call.pk).update(recording_state=Call.RecordingState.RECORDING)
            store_audio(recording, [synthetic_wav(call.duration)])
        # One is offered to every operator as training material.
        first = (
            Recording.objects.filter(
                sid__in=["RE" + c.sid[2:] for c in calls], status=Recording.Status.STORED
            )
            .order_by("pk")
            .first()
        )
        if first and not first.training_material_at:
            supervisor = get_user_model().objects.get(username="supervisor")
            mark_training_material(first, by=supervisor)
        return Recording.objects.filter(sid__in=["RE" + c.sid[2:] for c in calls]).count()

    def print_summary(self, created_calls, recordings=0):
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Sign in at /admin/ with:"))
        for username, password, role, _last, _first in STAFF:
            self.stdout.write(f"  {username:<12} {password:<22} {role}")
        self.stdout.write(
            "  (passwords are set when an account is created; changed ones are kept)\n"
            "  supervisor and compliance also need a code from an authenticator app after the\n"
            "  password: print the current one with `python manage.py demo_totp supervisor`\n"
            "  (or `… demo_totp compliance`), or add the account to an app with its URI:\n"
            + "".join(f"    {_demo_totp_uri(name)}\n" for name in DEMO_TOTP_KEYS)
            + f"  customers: {Customer.objects.count()}, calls: {Call.objects.count()}"
            f" ({created_calls} new), stored recordings: {recordings}"
        )


def _demo_totp_uri(username):
    device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
    return device.config_url if device else f"({username}: no device)"
