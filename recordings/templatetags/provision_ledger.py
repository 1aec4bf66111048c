from django import template

from recordings import provision
from recordings.models import Recording

register = template.Library()


@register.inclusion_tag("recordings/provision_button.html", takes_context=True)
def provision_button(context, recording):
    """The way to hand ``recording`` to a third party, for those whose role allows it."""
    user = context["request"].user
    return {
        "recording": recording,
        "shown": provision.may_provide(user)
        and recording.status == Recording.Status.STORED
        and recording.sealed_at is None,
    }
