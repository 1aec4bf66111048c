import os

from django.http import FileResponse, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from contactcenter.urls import urlpatterns as project_urlpatterns

CONSTANT_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="ja-JP">'
    "お電話ありがとうございます。</Say></Response>"
)


@csrf_exempt
def constant_twiml(request):
    """The baseline: Django answering TwiML with no signature check and no database."""
    return HttpResponse(CONSTANT_TWIML, content_type="text/xml; charset=utf-8")


def plain_audio(request):
    """The playback baseline: Django's FileResponse of the same audio, unencrypted."""
    return FileResponse(open(os.environ["BENCH_PLAIN_AUDIO"], "rb"), content_type="audio/wav")


urlpatterns = [
    path("bench/constant-twiml", constant_twiml),
    path("bench/plain-audio", plain_audio),
    *project_urlpatterns,
]
