"""Fill the database with a believable demo: staff in each role, customers and calls.

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

from contactcenter.models import Call, Customer, Operator
from contactcenter.phones import CallerIdStatus
from contactcenter.roles import COMPLIANCE, OPERATOR, SUPERVISOR

STAFF = [
    # username, password, role, last name, first name
    ("supervisor", "demo-supervisor-pass", SUPERVISOR, "佐藤", "美咲"),
    ("compliance", "demo-compliance-pass", COMPLIANCE, "高橋", "健"),
    ("operator1", "demo-operator1-pass", OPERATOR, "田中", "一郎"),
    ("operator2", "demo-operator2-pass", OPERATOR, "鈴木", "花子"),
    ("operator3", "demo-operator3-pass", OPERATOR, "伊藤", "翔太"),
]

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
            operators = self.seed_operators(users)
            customers = self.seed_customers()
            created_calls = self.seed_calls(operators, customers)
        self.print_summary(created_calls)

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
                    "recording_acknowledged_at": timezone.now() - timedelta(days=30),
                },
            )
            operators.append(operator)
        return operators

    def seed_customers(self):
        return [
            Customer.objects.get_or_create(phone_number=number, defaults={"name": name})[0]
            for number, name in CUSTOMERS
        ]

    def seed_calls(self, operators, customers):
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
            duration = rng.randint(60, 900)
            operator = rng.choice(operators)
            customer = rng.choice(customers)
            if index == WITHHELD_CALL:
                customer = Customer.objects.create(caller_id_status=CallerIdStatus.WITHHELD)
            Call.objects.create(
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
            created += 1
        return created

    def print_summary(self, created_calls):
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Sign in at /admin/ with:"))
        for username, password, role, _last, _first in STAFF:
            self.stdout.write(f"  {username:<12} {password:<22} {role}")
        self.stdout.write(
            "  (passwords are set when an account is created; changed ones are kept)\n"
            f"  customers: {Customer.objects.count()}, calls: {Call.objects.count()}"
            f" ({created_calls} new)"
        )
