"""Use-purpose notices as numbered versions: never changed once published, copied into a new
draft, published only when complete, and exactly one in force at a time."""

from contextlib import suppress
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from privacy.models import Notice, NoticePurpose
from privacy.services import (
    compose_announcement,
    new_draft_from,
    notice_in_force,
    publish_notice,
)

from .factories import NoticeFactory, published_notice

pytestmark = pytest.mark.django_db


def assert_still_a_draft(notice):
    notice.refresh_from_db()
    assert notice.status == Notice.Status.DRAFT
    assert notice.version is None
    assert notice.published_at is None
    assert notice.published_by is None


class TestVersions:
    def test_published_notices_are_numbered_in_order(self, nine, quality, supervisor):
        """GIVEN three drafts published one after another
        THEN they become v1, v2 and v3, with their dates and publisher; a draft has no number."""
        first = published_notice(purposes=[quality], effective_from=nine, by=supervisor)
        second = published_notice(
            purposes=[quality], effective_from=nine + timedelta(days=1), by=supervisor
        )
        third = published_notice(
            purposes=[quality], effective_from=nine + timedelta(days=2), by=supervisor
        )
        draft = NoticeFactory(purposes=[quality])

        assert [first.version, second.version, third.version] == [1, 2, 3]
        assert [str(first), str(second), str(third)] == ["v1", "v2", "v3"]
        assert third.is_published
        assert third.effective_from == nine + timedelta(days=2)
        assert third.published_by == supervisor
        assert third.published_at is not None
        assert draft.version is None
        assert not draft.is_published

    def test_a_published_notice_cannot_be_changed(self, quality, supervisor):
        """GIVEN a published notice
        WHEN its body is changed and saved
        THEN ValidationError is raised and the stored body is unchanged."""
        notice = published_notice(purposes=[quality], by=supervisor)
        body = notice.body_ja

        notice.body_ja = "書き換えた本文"
        with pytest.raises(ValidationError) as error:
            notice.save()

        assert error.value.messages == [
            "公開済みの通知は変更できません。新しい版を作成してください。"
        ]
        notice.refresh_from_db()
        assert notice.body_ja == body

    def test_a_published_notices_purposes_cannot_be_added_or_removed(
        self, quality, training, supervisor
    ):
        """GIVEN a published notice announcing one purpose
        WHEN a purpose is added to it or its purpose is removed
        THEN ValidationError is raised and it still announces exactly the one purpose."""
        notice = published_notice(purposes=[quality], by=supervisor)

        with pytest.raises(ValidationError):
            NoticePurpose.objects.create(notice=notice, purpose=training)
        with pytest.raises(ValidationError):
            notice.notice_purposes.get().delete()

        assert [np.purpose for np in notice.notice_purposes.all()] == [quality]

    def test_a_published_notice_cannot_be_deleted(self, quality, supervisor):
        """GIVEN a published notice
        WHEN someone deletes it
        THEN ValidationError is raised and it is still there with its purposes."""
        notice = published_notice(purposes=[quality], by=supervisor)

        with pytest.raises(ValidationError) as error:
            notice.delete()

        assert error.value.messages == ["公開済みの通知は削除できません。"]
        assert Notice.objects.filter(pk=notice.pk, status=Notice.Status.PUBLISHED).exists()
        assert notice.notice_purposes.count() == 1

    def test_a_copy_loaded_before_publication_cannot_delete_the_published_notice(
        self, quality, supervisor
    ):
        """GIVEN a notice loaded while still a draft, then published
        WHEN the copy loaded earlier is deleted
        THEN the deletion is refused and the published notice is still there."""
        draft = NoticeFactory(purposes=[quality])
        loaded_earlier = Notice.objects.get(pk=draft.pk)
        publish_notice(notice=draft, by=supervisor)

        with suppress(ValidationError):
            loaded_earlier.delete()

        assert Notice.objects.filter(pk=draft.pk, status=Notice.Status.PUBLISHED).exists()
        assert NoticePurpose.objects.filter(notice_id=draft.pk).count() == 1

    def test_a_draft_may_be_edited_and_deleted(self, quality):
        """GIVEN a draft
        THEN it may be saved with changes and deleted, taking its purposes with it."""
        draft = NoticeFactory(purposes=[quality])

        draft.body_ja = "直した本文"
        draft.save()
        draft.refresh_from_db()
        assert draft.body_ja == "直した本文"

        draft.delete()
        assert not Notice.objects.exists()
        assert not NoticePurpose.objects.exists()

    def test_the_announced_days_and_training_flag_are_fixed_at_publication(
        self, quality, supervisor
    ):
        """GIVEN a notice published when a purpose allowed 365 days and no training review
        WHEN the purpose is changed to 30 days with training review
        THEN the published notice still announces 365 days without training review."""
        notice = published_notice(purposes=[quality], by=supervisor)

        quality.retention_days = 30
        quality.allows_training_review = True
        quality.save()

        announced = NoticePurpose.objects.get(notice=notice)
        assert announced.retention_days == 365
        assert announced.allows_training_review is False
        assert announced.days == 365
        assert announced.training is False
        with translation.override("en"):
            assert announced.retention_display == "1 year"

    def test_a_draft_follows_the_purpose_until_it_is_published(self, quality, supervisor):
        """GIVEN a draft created when a purpose allowed 365 days
        WHEN the purpose changes to 30 days with training review before publication
        THEN the draft shows the new values, and publishing fixes them."""
        draft = NoticeFactory(purposes=[quality])
        quality.retention_days = 30
        quality.allows_training_review = True
        quality.save()

        announced = NoticePurpose.objects.get(notice=draft)
        assert announced.retention_days is None
        assert (announced.days, announced.training) == (30, True)

        publish_notice(notice=draft, by=supervisor)
        quality.retention_days = 7
        quality.save()

        announced = NoticePurpose.objects.get(notice=draft)
        assert (announced.retention_days, announced.allows_training_review) == (30, True)
        assert announced.days == 30
        with translation.override("en"):
            assert announced.retention_display == "30 days"


class TestNewDraftFrom:
    def test_a_new_draft_copies_the_text_purposes_and_scripts(
        self, nine, quality, training, supervisor
    ):
        """GIVEN a published v1 with two purposes and its own scripts
        WHEN a new draft is started from it
        THEN the draft has the same text, purposes and scripts, is not published, and
        becomes v2 when published; v1 is untouched."""
        source = NoticeFactory(
            purposes=[quality, training],
            title_ja="録音について",
            title_en="About recording",
            provider_statement_en="Twilio carries our calls.",
            announcement_ja="このお電話は品質向上と研修のために録音され、Twilio が伝送します。",
            announcement_en="This call is recorded for service quality and operator training "
            "and carried by Twilio.",
        )
        v1 = publish_notice(notice=source, by=supervisor, effective_from=nine)

        draft = new_draft_from(notice=v1)

        assert draft.pk != v1.pk
        assert draft.status == Notice.Status.DRAFT
        assert draft.version is None
        for field in (
            "title_ja",
            "title_en",
            "body_ja",
            "body_en",
            "provider_statement_ja",
            "provider_statement_en",
            "contact_ja",
            "contact_en",
            "announcement_ja",
            "announcement_en",
        ):
            assert getattr(draft, field) == getattr(v1, field), field
        assert [np.purpose for np in draft.notice_purposes.all()] == [quality, training]

        v2 = publish_notice(notice=draft, by=supervisor, effective_from=nine + timedelta(days=1))
        assert v2.version == 2
        v1.refresh_from_db()
        assert v1.version == 1
        assert v1.notice_purposes.count() == 2

    def test_the_new_draft_takes_the_purposes_current_days(self, quality, supervisor):
        """GIVEN v1 announcing 365 days, and the purpose since changed to 30 days
        WHEN a new draft is started from v1
        THEN the draft announces the current 30 days while v1 keeps 365."""
        v1 = published_notice(purposes=[quality], by=supervisor)
        quality.retention_days = 30
        quality.save()

        draft = new_draft_from(notice=v1)

        assert draft.notice_purposes.get().days == 30
        assert v1.notice_purposes.get().days == 365


class TestPublishRefusals:
    def test_a_notice_without_purposes_is_refused(self, supervisor):
        """GIVEN a draft announcing no purpose
        WHEN it is published
        THEN ValidationError asks for a purpose and the draft stays a draft."""
        draft = NoticeFactory()

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=draft, by=supervisor)

        assert error.value.messages == ["利用目的を 1 つ以上選んでください。"]
        assert_still_a_draft(draft)
        assert draft.announcement_ja == ""

    def test_a_notice_without_a_japanese_body_is_refused(self, quality, supervisor):
        """GIVEN a draft whose Japanese body is only blanks
        WHEN it is published
        THEN ValidationError asks for the body and nothing is written, not even the scripts."""
        draft = NoticeFactory(purposes=[quality], body_ja="  \n ")

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=draft, by=supervisor)

        assert error.value.messages == ["通知の日本語本文を入力してください。"]
        assert_still_a_draft(draft)
        assert draft.announcement_ja == ""
        assert NoticePurpose.objects.get(notice=draft).retention_days is None

    def test_a_notice_without_a_provider_statement_is_refused(self, quality, supervisor):
        """GIVEN a draft that does not say which provider carries calls
        WHEN it is published
        THEN ValidationError asks for the provider statement."""
        draft = NoticeFactory(purposes=[quality], provider_statement_ja="")

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=draft, by=supervisor)

        assert error.value.messages == [
            "通話を伝送・保存する第三者の通信事業者を記載してください。"
        ]
        assert_still_a_draft(draft)

    def test_every_problem_is_reported_at_once(self, supervisor):
        """GIVEN a draft with no purpose, no body and no provider statement
        THEN all three problems are reported together."""
        draft = NoticeFactory(body_ja="", provider_statement_ja="")

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=draft, by=supervisor)

        assert len(error.value.messages) == 3
        assert_still_a_draft(draft)

    def test_a_notice_cannot_take_effect_in_the_past(self, quality, supervisor):
        """GIVEN a draft
        WHEN it is published to take effect two minutes ago
        THEN ValidationError is raised and it stays a draft."""
        draft = NoticeFactory(purposes=[quality])

        with pytest.raises(ValidationError) as error:
            publish_notice(
                notice=draft, by=supervisor, effective_from=timezone.now() - timedelta(minutes=2)
            )

        assert error.value.messages == ["過去の日時から適用することはできません。"]
        assert_still_a_draft(draft)

    @pytest.mark.parametrize(
        "offset", [timedelta(0), -timedelta(hours=1)], ids=["same-time", "earlier"]
    )
    def test_a_notice_must_take_effect_after_the_latest_one(
        self, nine, quality, supervisor, offset
    ):
        """GIVEN v1 taking effect at 09:00 tomorrow
        WHEN another draft is published to take effect at that same time or earlier
        THEN ValidationError names v1 and its time, and the draft stays a draft."""
        published_notice(purposes=[quality], effective_from=nine, by=supervisor)
        draft = NoticeFactory(purposes=[quality])

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=draft, by=supervisor, effective_from=nine + offset)

        expected_time = nine.strftime("%Y-%m-%d %H:%M")
        assert error.value.messages == [
            f"v1（{expected_time} 適用開始）より後の日時を指定してください。"
        ]
        assert_still_a_draft(draft)
        assert Notice.objects.published().count() == 1

    def test_publishing_a_published_notice_again_is_refused_and_changes_nothing(
        self, nine, quality, supervisor
    ):
        """GIVEN v1, published when its purpose allowed 365 days, and the purpose since
        changed to 30 days
        WHEN v1 is published again
        THEN ValidationError is raised and v1 keeps its number, dates and 365 days."""
        v1 = published_notice(purposes=[quality], effective_from=nine, by=supervisor)
        published_at = v1.published_at
        quality.retention_days = 30
        quality.save()

        with pytest.raises(ValidationError) as error:
            publish_notice(notice=v1, by=supervisor, effective_from=nine + timedelta(days=1))

        assert error.value.messages == ["この通知は他の人が公開または変更しました。"]
        v1.refresh_from_db()
        assert (v1.version, v1.effective_from, v1.published_at) == (1, nine, published_at)
        assert v1.notice_purposes.get().retention_days == 365

    def test_empty_announcements_are_written_from_the_purposes_at_publication(
        self, quality, training, supervisor
    ):
        """GIVEN a draft with no announcement scripts
        WHEN it is published
        THEN it is not refused: both scripts are written from its purposes."""
        draft = NoticeFactory(purposes=[quality, training])

        notice = publish_notice(notice=draft, by=supervisor)

        assert notice.announcement_ja == compose_announcement(
            purposes=[quality, training], language="ja"
        )
        assert notice.announcement_en == compose_announcement(
            purposes=[quality, training], language="en"
        )

    def test_announcements_written_by_hand_are_kept(self, quality, supervisor):
        """GIVEN a draft with its own Japanese script and no English one
        WHEN it is published
        THEN the Japanese script is kept and only the English one is written."""
        script = "品質向上のため録音し、トゥイリオ社が伝送します。"
        draft = NoticeFactory(purposes=[quality], announcement_ja=script)

        notice = publish_notice(notice=draft, by=supervisor)

        assert notice.announcement_ja == script
        assert "service quality" in notice.announcement_en


class TestNoticeInForce:
    @pytest.fixture
    def versions(self, nine, quality, supervisor):
        """v1 in force from 09:00 tomorrow, v2 from 12:00."""
        v1 = published_notice(purposes=[quality], effective_from=nine, by=supervisor)
        v2 = published_notice(
            purposes=[quality], effective_from=nine + timedelta(hours=3), by=supervisor
        )
        return v1, v2

    def test_exactly_one_notice_is_in_force_at_any_time_after_the_first(self, nine, versions):
        """GIVEN v1 from 09:00 and v2 from 12:00
        THEN none is in force before 09:00, v1 from 09:00 to just before 12:00, v2 from 12:00."""
        v1, v2 = versions
        expected = [
            (nine - timedelta(seconds=1), None),
            (nine, v1),
            (nine + timedelta(hours=1), v1),
            (nine + timedelta(hours=3) - timedelta(microseconds=1), v1),
            (nine + timedelta(hours=3), v2),
            (nine + timedelta(days=365), v2),
        ]

        assert [(at, Notice.objects.in_force(at)) for at, _ in expected] == expected

    def test_the_cached_answer_agrees_with_the_database(self, nine, versions):
        """GIVEN v1 from 09:00 and v2 from 12:00
        THEN notice_in_force gives the same answer as the database at every one of those times."""
        times = [
            nine - timedelta(seconds=1),
            nine,
            nine + timedelta(hours=1),
            nine + timedelta(hours=3) - timedelta(microseconds=1),
            nine + timedelta(hours=3),
            nine + timedelta(days=365),
        ]

        assert [notice_in_force(at) for at in times] == [
            Notice.objects.in_force(at) for at in times
        ]
        assert notice_in_force(nine + timedelta(hours=1)).version == 1

    def test_without_a_time_the_notice_in_force_now_is_given(self, nine, quality, supervisor):
        """GIVEN v1 in force from now and v2 scheduled for tomorrow
        THEN the notice in force now is v1."""
        v1 = published_notice(purposes=[quality], by=supervisor)
        published_notice(purposes=[quality], effective_from=nine, by=supervisor)

        assert Notice.objects.in_force() == v1
        assert notice_in_force() == v1

    def test_drafts_are_never_in_force(self, quality):
        """GIVEN only drafts
        THEN no notice is in force."""
        NoticeFactory(purposes=[quality], effective_from=timezone.now() - timedelta(days=1))

        assert Notice.objects.in_force() is None
        assert notice_in_force() is None

    def test_in_force_is_one_query(self, nine, versions, django_assert_num_queries):
        """GIVEN two published notices
        THEN finding the one in force costs one query."""
        with django_assert_num_queries(1):
            Notice.objects.in_force(nine + timedelta(hours=1))

    def test_a_publication_is_seen_once_committed(
        self, quality, supervisor, django_capture_on_commit_callbacks
    ):
        """GIVEN a process that has already looked up the notice in force (none)
        WHEN a notice is published and the transaction commits
        THEN the process sees the new notice in force."""
        assert notice_in_force() is None

        with django_capture_on_commit_callbacks(execute=True):
            notice = published_notice(purposes=[quality], by=supervisor)

        assert notice_in_force() == notice
