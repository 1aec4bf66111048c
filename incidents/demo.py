"""The demo incident ``seed_demo`` can create: a supervisor's laptop lost on a train, scoped to
the recordings that supervisor's account played (the audit trail), encryption test done.

The laptop also held a copy of the deployment's settings with the current master key, so the
recordings it could reach are not protected: the incident is reportable and its 速報/確報
deadlines show on the dashboard. Call it after the supervisor has played some recordings."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import encryption, scoping, services
from .models import Incident


def create_demo_incident(*, officer, supervisor, now=None):
    """Record, scope and test the demo incident; return it (once: an existing one is kept)."""
    existing = Incident.objects.filter(title="監督者のノートPC紛失").first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    incident = services.record_incident(
        incident=Incident(
            title="監督者のノートPC紛失",
            description=(
                "監督者が業務用ノートPCを電車内で紛失した。ブラウザにはバックオフィスの"
                "ログイン状態が残っていたおそれがある。"
            ),
            occurred_from=now - timedelta(days=2, hours=3),
            occurred_to=now - timedelta(days=2),
            became_known_at=now - timedelta(days=2),
            cause=Incident.Cause.LOSS_OR_THEFT,
            cause_detail=(
                "置き忘れ。端末には設定ファイル（録音のマスター鍵を含む）のコピーが保存されていた。"
            ),
            category_unlawful=True,
            scope_kind=Incident.ScopeKind.ACCOUNT,
            scope_user=supervisor,
            affected_key_ids=[settings.RECORDINGS_MASTER_KEYS[0][0]],
            secondary_damage="現時点で不正利用は確認されていない。",
            recurrence_measures="セッションの有効期限の短縮、端末の遠隔消去の導入。",
            public_notice_text=(
                "当社の従業員が業務用のノートPCを紛失しました。お客様との通話録音の一部を"
                "閲覧できる状態であったおそれがあります。現在、不正な利用は確認されていません。"
            ),
        ),
        by=officer,
    )
    scoping.start_scoping(incident=incident, by=officer)
    scoping.run_scoping(incident.pk)
    return encryption.run_encryption_test(incident.pk, by=officer)
