"""What a notice says: the announcement written from its purposes, how long it takes to read
aloud, and the differences between two versions."""

import pytest
from django.utils import translation

from privacy.models import NoticePurpose
from privacy.services import (
    ANNOUNCEMENT_LIMIT_SECONDS,
    check_announcements,
    compose_announcement,
    diff_notices,
    estimate_speech_seconds,
    new_draft_from,
    notice_warnings,
    publish_notice,
)

from .factories import NoticeFactory, PurposeFactory, published_notice

pytestmark = pytest.mark.django_db


class TestComposeAnnouncement:
    def test_the_japanese_script_says_what_must_be_said(self, quality, training):
        """GIVEN two purposes
        THEN the Japanese script says the call is recorded, names both purposes, names
        Twilio as the provider and says the notice is on the website."""
        text = compose_announcement(purposes=[quality, training], language="ja")

        assert "録音" in text
        assert "品質向上、研修のため" in text
        assert "トゥイリオ" in text
        assert "ウェブサイトのプライバシー通知" in text

    def test_the_english_script_says_what_must_be_said(self, quality, training):
        """GIVEN three purposes
        THEN the English script says the call is recorded, lists the purposes as
        "a, b and c", names Twilio and says where the privacy notice is."""
        third = PurposeFactory(name_en="fraud prevention")

        text = compose_announcement(purposes=[quality, training, third], language="en")

        assert "This call will be recorded" in text
        assert "service quality, operator training and fraud prevention." in text
        assert "Twilio" in text
        assert "privacy notice on our website" in text

    def test_one_english_purpose_is_named_alone(self, quality):
        """GIVEN a single purpose
        THEN the English script names it without a list joiner."""
        text = compose_announcement(purposes=[quality], language="en-us")

        assert "following purposes: service quality." in text
        assert " and " not in text.split(".")[0]


class TestAnnouncementLength:
    def test_the_estimate_grows_with_the_text(self):
        """GIVEN a text and the same text twice
        THEN the longer one is estimated to take twice as long, in either language."""
        japanese = "このお電話は録音させていただきます"
        english = "This call will be recorded"

        assert estimate_speech_seconds(japanese * 2, "ja") == pytest.approx(
            2 * estimate_speech_seconds(japanese, "ja")
        )
        assert estimate_speech_seconds(f"{english} {english}", "en") == pytest.approx(
            2 * estimate_speech_seconds(english, "en")
        )
        assert estimate_speech_seconds(english, "en") > 0

    def test_japanese_punctuation_and_spaces_are_not_read(self):
        """GIVEN the same Japanese sentence with and without punctuation and spaces
        THEN both take the same time."""
        assert estimate_speech_seconds("録音、します。 (録音)", "ja") == estimate_speech_seconds(
            "録音します録音", "ja"
        )

    def test_a_short_announcement_raises_no_warning(self, quality):
        """GIVEN a draft with a short script in each language and an English body
        THEN neither script is too long and there is no warning."""
        notice = NoticeFactory(
            purposes=[quality],
            announcement_ja="このお電話は録音されます。",
            announcement_en="This call is recorded.",
        )

        checks = check_announcements(notice)

        assert [(check.language, check.too_long) for check in checks] == [
            ("ja", False),
            ("en", False),
        ]
        assert notice_warnings(notice) == []

    def test_a_long_announcement_is_warned_about(self, quality):
        """GIVEN a Japanese script of 200 characters (about 36 seconds)
        THEN it is reported as too long, with a warning naming the language and the limit."""
        notice = NoticeFactory(purposes=[quality], announcement_ja="録" * 200)

        japanese, english = check_announcements(notice)

        assert japanese.seconds > ANNOUNCEMENT_LIMIT_SECONDS
        assert japanese.too_long
        assert not english.too_long
        warnings = notice_warnings(notice)
        assert len(warnings) == 1
        assert "日本語" in warnings[0]
        assert "36 秒" in warnings[0]
        assert "30 秒以内" in warnings[0]

    def test_a_long_english_announcement_is_warned_about(self, quality):
        """GIVEN an English script of 80 words (about 32 seconds)
        THEN it is reported as too long."""
        notice = NoticeFactory(purposes=[quality], announcement_en=" ".join(["word"] * 80))

        with translation.override("en"):
            warnings = notice_warnings(notice)

        assert warnings == [
            "The English announcement takes about 32 seconds to read; "
            "keep it under 30 seconds so callers are not kept waiting."
        ]

    def test_an_empty_script_is_checked_as_it_would_be_written(self, quality, training):
        """GIVEN a draft without scripts
        THEN the check measures the script that would be written from its purposes."""
        notice = NoticeFactory(purposes=[quality, training])

        japanese, english = check_announcements(notice)

        assert japanese.text == compose_announcement(purposes=[quality, training], language="ja")
        assert english.text == compose_announcement(purposes=[quality, training], language="en")
        assert japanese.seconds == estimate_speech_seconds(japanese.text, "ja")

    def test_a_missing_english_body_is_warned_about(self, quality):
        """GIVEN a draft with no English body
        THEN the warnings say the English page will show the Japanese text."""
        notice = NoticeFactory(purposes=[quality], body_en="  ")

        assert notice_warnings(notice) == [
            "英語の本文がありません。英語のページには日本語の本文が表示されます。"
        ]


class TestDiffNotices:
    def by_label(self, old, new):
        with translation.override("en"):
            return {diff.label: diff for diff in diff_notices(old, new)}

    def test_identical_notices_have_no_changes(self, quality, supervisor):
        """GIVEN a notice and a new draft copied from it
        THEN no field is reported as changed."""
        v1 = published_notice(purposes=[quality], by=supervisor)
        draft = new_draft_from(notice=v1)

        diffs = self.by_label(v1, draft)

        assert len(diffs) == 11
        assert not any(diff.changed for diff in diffs.values())

    def test_changed_fields_and_purposes_are_reported_line_by_line(
        self, quality, training, supervisor
    ):
        """GIVEN v1 with one purpose and a two-line body
        WHEN a draft changes the second line and adds a purpose
        THEN the body and purposes are reported as changed, with the kept line, the
        removed line and the added line; every other field is unchanged."""
        v1 = publish_notice(
            notice=NoticeFactory(purposes=[quality], body_ja="一行目\n二行目"), by=supervisor
        )
        draft = new_draft_from(notice=v1)
        draft.body_ja = "一行目\n新しい二行目"
        draft.save()
        NoticePurpose.objects.create(notice=draft, purpose=training)

        diffs = self.by_label(v1, draft)

        assert diffs["body (Japanese)"].changed
        assert diffs["body (Japanese)"].lines == [
            (" ", "一行目"),
            ("-", "二行目"),
            ("+", "新しい二行目"),
        ]
        purposes = diffs["purposes"]
        assert purposes.changed
        assert [kind for kind, _ in purposes.lines] == [" ", "+"]
        assert purposes.lines[1][1].startswith("training: 研修 / operator training — 90 days")
        unchanged = {label for label, diff in diffs.items() if not diff.changed}
        assert unchanged == set(diffs) - {"body (Japanese)", "purposes"}
