from django import template

from recordings.access import may_download, windows_for
from recordings.models import Recording

register = template.Library()


@register.inclusion_tag("recordings/player.html", takes_context=True)
def recording_player(context, recording):
    """An audio player for ``recording``: the purposes the user may choose, then the audio."""
    user = context["request"].user
    return {
        "recording": recording,
        "stored": recording.status == Recording.Status.STORED,
        "sealed": recording.sealed_at is not None,
        "windows": windows_for(user, recording),
        "can_download": may_download(user),
        "csrf_token": context.get("csrf_token"),
    }
