"""REST API: the same live recording controls as the 通話中 page, for integrations."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from .models import Call
from .phones import format_phone_number
from .services import (
    ACTIONS,
    RecordingControlError,
    available_actions,
    control_recording,
    live_calls_for,
)


class LiveCallSerializer(serializers.ModelSerializer):
    caller = serializers.SerializerMethodField()
    operator = serializers.StringRelatedField()
    actions = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "sid",
            "started_at",
            "answered_at",
            "caller",
            "operator",
            "recording_state",
            "actions",
        ]

    def get_caller(self, call) -> str:
        if call.customer_id and call.customer.phone_number:
            return format_phone_number(call.customer.phone_number)
        return str(call.customer or call.from_number)

    def get_actions(self, call) -> list[str]:
        return available_actions(call)


class RecordingControlSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(ACTIONS))


class ApiRoot(APIView):
    """The API's entry point: where the endpoints and the OpenAPI schema are."""

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(
            {
                "live_calls": reverse("api:live-calls", request=request),
                "schema": reverse("api:schema", request=request),
            }
        )


class LiveCalls(APIView):
    """Calls in progress that you may control: your own, or every call for supervisors."""

    @extend_schema(responses=LiveCallSerializer(many=True))
    def get(self, request):
        calls = live_calls_for(request.user)[:100]
        return Response(LiveCallSerializer(calls, many=True).data)


class CallRecording(APIView):
    """Pause, resume or stop the recording of a call in progress."""

    @extend_schema(request=RecordingControlSerializer, responses=LiveCallSerializer)
    def post(self, request, sid):
        call = get_object_or_404(Call.objects.select_related("operator", "customer"), sid=sid)
        form = RecordingControlSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            call = control_recording(
                call=call, action=form.validated_data["action"], by=request.user
            )
        except RecordingControlError as error:
            return Response({"detail": str(error.message)}, status=error.status)
        return Response(LiveCallSerializer(call).data, status=status.HTTP_200_OK)
