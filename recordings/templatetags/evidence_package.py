from django import template

from recordings import evidence

register = template.Library()


@register.inclusion_tag("recordings/evidence_button.html", takes_context=True)
def evidence_button(context, recording):
    """The download of ``recording``'s evidence package, for those whose role allows it."""
    user = context["request"].user
    return {
        "recording": recording,
        "shown": evidence.may_package(user) and bool(evidence.check(recording)),
    }
