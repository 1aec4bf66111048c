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
