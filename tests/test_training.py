"""Training review (研修用レビュー): operators see their own calls and training material while the
training window is open, write notes and a self-evaluation; supervisors give feedback and
scores on the scorecard they edit. Nothing else is visible to operators."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from recordings.models import RecordingPurpose
from training import services as training_services
from training.models import Feedback, Score, ScorecardCriterion, TrainingReview

from .test_playback import stored_recording

pytestmark = pytest.mark.django_db

LIST = reverse("training:list")


def detail(recording):
    return reverse("training:review", args=[recording.pk])


@pytest.fixture
def own(notice, operator):
    return stored_recording(operator)


@pytest.fixture
def others(notice, other_operator):
    return stored_recording(other_operator)


def test_an_operator_lists_their_own_calls_and_training_material_only(
    client,
    own,
    others,
    operator,
    other_operator,
    supervisor,
    notice,
):
    third = stored_recording(other_operator)
    training_services.mark_training_material(third, by=supervisor)
    client.force_login(operator.user)

    page = client.get(LIST)

    assert page.status_code == 200
    text = page.content.decode()
    assert detail(own) in text
    assert detail(third) in text
    assert detail(others) not in text
    assert "<h1>研修用レビュー</h1>" in text


def test_a_closed_training_window_takes_a_recording_off_the_list(client, own, operator):
    RecordingPurpose.objects.filter(recording=own, allows_training_review=True).update(
        usable_until=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(operator.user)

    assert detail(own) not in client.get(LIST).content.decode()
    response = client.get(detail(own))
    assert response.status_code == 403
    assert AccessEvent.objects.filter(action=AccessEvent.Action.REFUSED).exists()


def test_another_operators_call_is_refused_and_audited(client, others, operator):
    client.force_login(operator.user)

    response = client.get(detail(others))

    assert response.status_code == 403
    assert "研修" in response.content.decode()
    event = AccessEvent.objects.get(action=AccessEvent.Action.REFUSED)
    assert event.recording_id == others.pk
    assert event.actor == operator.user


def test_the_review_page_plays_for_training_only(client, own, operator):
    client.force_login(operator.user)

    page = client.get(detail(own)).content.decode()

    assert 'class="recording-player"' in page
    assert 'value="training"' in page
    assert 'value="quality"' not in page
    assert "player-download" not in page


def test_an_operator_writes_and_corrects_a_review(client, own, operator):
    client.force_login(operator.user)

    response = client.post(
        detail(own),
        {
            "save_review": "1",
            "notes": "お客様の住所確認で保留が長かった",
            "self_evaluation": "保留前に理由を伝える",
            "self_rating": "3",
        },
        follow=True,
    )
    client.post(detail(own), {"save_review": "1", "notes": "訂正", "self_rating": "4"})

    assert response.status_code == 200
    review = TrainingReview.objects.get()
    assert review.operator == operator
    assert review.notes == "訂正"
    assert review.self_rating == 4
    written = AccessEvent.objects.filter(action=AccessEvent.Action.TRAINING_REVIEW)
    assert [event.detail["written"] for event in written] == ["review", "correction"]
    assert {event.actor for event in written} == {operator.user}


def test_a_bad_rating_is_an_error_and_saves_nothing(client, own, operator):
    client.force_login(operator.user)

    response = client.post(detail(own), {"save_review": "1", "self_rating": "9"})

    assert response.status_code == 200
    assert "self_rating" in response.content.decode()
    assert not TrainingReview.objects.exists()


def test_a_supervisor_gives_feedback_with_scores_the_operator_then_sees(
    client, own, operator, supervisor
):
    review = TrainingReview.objects.create(recording=own, operator=operator, notes="メモ")
    criteria = list(ScorecardCriterion.objects.filter(active=True))
    assert len(criteria) == 5  # the default scorecard
    client.force_login(supervisor)

    page = client.get(detail(own)).content.decode()
    assert "メモ" in page
    client.post(
        detail(own),
        {
            "give_feedback": "1",
            "review": review.pk,
            f"r{review.pk}-comment": "復唱が丁寧で良い",
            f"r{review.pk}-score_{criteria[0].pk}": "5",
            f"r{review.pk}-score_{criteria[1].pk}": "3",
        },
    )

    feedback = Feedback.objects.get()
    assert feedback.supervisor == supervisor
    assert AccessEvent.objects.get(action=AccessEvent.Action.TRAINING_REVIEW).actor == supervisor
    assert {(s.criterion_id, s.score) for s in Score.objects.all()} == {
        (criteria[0].pk, 5),
        (criteria[1].pk, 3),
    }
    client.force_login(operator.user)
    page = client.get(detail(own)).content.decode()
    assert "復唱が丁寧で良い" in page
    assert f"{criteria[0].name}: 5 / 5" in page


def test_a_score_above_the_criterions_maximum_is_refused(client, own, operator, supervisor):
    review = TrainingReview.objects.create(recording=own, operator=operator)
    criterion = ScorecardCriterion.objects.create(name="速さ", max_score=3)
    client.force_login(supervisor)

    client.post(
        detail(own),
        {
            "give_feedback": "1",
            "review": review.pk,
            f"r{review.pk}-comment": "x",
            f"r{review.pk}-score_{criterion.pk}": "4",
        },
    )

    assert not Feedback.objects.exists()


def test_operators_cannot_give_feedback(client, own, operator, other_operator):
    review = TrainingReview.objects.create(recording=own, operator=operator)
    client.force_login(operator.user)

    client.post(
        detail(own), {"give_feedback": "1", "review": review.pk, f"r{review.pk}-comment": "x"}
    )

    assert not Feedback.objects.exists()


def test_an_operator_sees_only_their_own_review(client, own, operator, other_operator, supervisor):
    training_services.mark_training_material(own, by=supervisor)
    TrainingReview.objects.create(recording=own, operator=operator, notes="自分のメモ")
    client.force_login(other_operator.user)

    page = client.get(detail(own)).content.decode()

    assert "自分のメモ" not in page


def test_a_role_without_training_review_is_refused(client, own, compliance_officer):
    client.force_login(compliance_officer)

    assert client.get(LIST).status_code == 403
    assert client.get(detail(own)).status_code == 403


def test_the_list_searches_and_pages(client, notice, operator):
    for _ in range(25):
        stored_recording(operator)
    client.force_login(operator.user)

    first = client.get(LIST).content.decode()
    second = client.get(LIST + "?page=2").content.decode()
    nothing = client.get(LIST + "?q=no-such-operator").content.decode()

    assert first.count("/operator/training/") >= 20
    assert "2" in second
    assert "検索に一致する録音はありません。" in nothing


def test_the_training_pages_need_a_login(client, own):
    response = client.get(LIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
