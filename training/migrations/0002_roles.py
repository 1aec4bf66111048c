"""Supervisors edit the scorecard, read reviews and give feedback; compliance reads them.
Operators write their own reviews on the training pages (no admin permission needed)."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

READ = [
    "training.view_trainingreview",
    "training.view_feedback",
    "training.view_score",
    "training.view_scorecardcriterion",
]


def create_roles(apps, schema_editor):
    grant(
        apps,
        SUPERVISOR,
        [
            *READ,
            "training.add_scorecardcriterion",
            "training.change_scorecardcriterion",
            "training.give_feedback",
        ],
    )
    grant(apps, COMPLIANCE, READ)


def create_scorecard(apps, schema_editor):
    criterion = apps.get_model("training", "ScorecardCriterion")
    if criterion.objects.exists():
        return
    for position, (name, description) in enumerate(
        [
            ("名乗り・あいさつ", "会社名と氏名を名乗り、明るくあいさつしたか"),
            ("傾聴・確認", "お客様の話を遮らずに聞き、要件を復唱して確認したか"),
            ("説明の正確さ", "正確な情報を分かりやすく説明したか"),
            ("言葉遣い", "敬語を正しく使い、丁寧な言葉遣いだったか"),
            ("個人情報の取扱い", "本人確認を行い、必要な場面で録音を一時停止したか"),
        ],
        start=1,
    ):
        criterion.objects.create(name=name, description=description, position=position)


class Migration(migrations.Migration):
    dependencies = [("training", "0001_initial")]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_scorecard, migrations.RunPython.noop),
    ]
