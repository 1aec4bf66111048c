"""The evidence package of a recording for a dispute: a streamed ZIP of the audio (both sides
and each side), the call and its timeline, the consent with its announcement, the notice in
force and the audit events, with a manifest signed with the organisation's Ed25519 key; the
standalone verifier accepts it and fails on any changed byte, another key, a missing or an
added member; only supervisors and compliance officers get it, each download audited."""

import ast
import hashlib
import io
import json
import re
import subprocess
import sys
import wave
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.urls import reverse

from audit import anchors
from audit.models import AccessEvent
from consent.models import ConsentRecord
from consent.services import record_consent
from contactcenter.roles import NotAllowed
from recordings import evidence, ingest, retention
from recordings.models import Recording, RecordingPurpose
from twilio_emulator.server import synthetic_wav

from . import factories
from .helpers.project import BASE_DIR

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
AUDIO = synthetic_wav(2)  # 8 kHz, 16-bit, two channels
ANNOUNCEMENT = "この通話は品質向上と、言った言わないの確認のため録音します。"


@pytest.fixture
def evidence_notice(db):
    return factories.published_notice(
        purposes=[
            factories.PurposeFactory(code="quality", name_ja="品質向上", retention_days=30),
            factories.PurposeFactory(
                code="evidence", name_ja="言った言わないの確認・紛争の解決", retention_days=365
            ),
        ]
    )


@pytest.fixture
def recording(evidence_notice, operator):
    """A stored recording of a call whose caller consented after hearing ``ANNOUNCEMENT``."""
    call = factories.CallFactory(operator=operator)
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.GRANTED,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        announcement_text=ANNOUNCEMENT,
        digits="1",
        recorded_by_system="twilio-ivr",
    )
    recording = Recording.objects.create(
        sid="RE" + call.sid[2:], call=call, status=Recording.Status.COMPLETED, channels=2
    )
    return ingest.store_audio(recording, [AUDIO])


@pytest.fixture
def public_key(tmp_path):
    path = tmp_path / "key.txt"
    path.write_text(anchors.public_key_text() + "\n")
    return path


def download(recording, user):
    return b"".join(evidence.package(recording, by=user))


def run_verifier(package_bytes, key_path, tmp_path):
    path = tmp_path / "package.zip"
    path.write_bytes(package_bytes)
    return subprocess.run(
        [sys.executable, "-m", "evidence_verify", str(path), "--public-key", str(key_path)],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        check=False,
    )


def members(package_bytes):
    with zipfile.ZipFile(io.BytesIO(package_bytes)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(contents):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_package_holds_every_piece_and_the_verifier_accepts_it(
    recording, supervisor, public_key, tmp_path
):
    package = download(recording, supervisor)
    contents = members(package)
    sid = recording.sid
    assert contents[f"audio/{sid}.wav"] == AUDIO
    for side in ("customer", "operator"):
        with wave.open(io.BytesIO(contents[f"audio/{sid}-{side}.wav"])) as mono:
            assert mono.getnchannels() == 1
            assert mono.getnframes() == 2 * 8000
    call = json.loads(contents["call.json"])
    assert call["call"]["sid"] == recording.call.sid
    assert call["recording"]["plaintext_sha256"] == hashlib.sha256(AUDIO).hexdigest()
    assert "wrapped_key" not in call["recording"]
    assert isinstance(call["timeline"], list)
    (consent,) = json.loads(contents["consent.json"])["consent_records"]
    assert consent["announcement_text"] == ANNOUNCEMENT
    assert consent["announcement_sha256"] == hashlib.sha256(ANNOUNCEMENT.encode()).hexdigest()
    version = evidence_notice_version(recording)
    notice_html = contents[f"notice/notice-v{version}.html"].decode()
    assert "<html" in notice_html
    assert json.loads(contents[f"notice/notice-v{version}.json"])["version"] == version
    events = json.loads(contents["audit.json"])["events"]
    assert events[-1]["action"] == Action.DOWNLOAD
    assert events[-1]["detail"] == {"channel": "evidence_package"}

    manifest = json.loads(contents["manifest.json"])
    listed = {entry["name"]: entry for entry in manifest["members"]}
    assert set(listed) == set(contents) - {"manifest.json", "manifest.sig"}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(contents[name]).hexdigest()
        assert entry["size"] == len(contents[name])
    assert manifest["signature"]["public_key"] == anchors.public_key_text()

    result = run_verifier(package, public_key, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "検証成功" in result.stdout


def evidence_notice_version(recording):
    return RecordingPurpose.objects.filter(recording=recording).first().notice.version


def test_the_verifier_takes_the_key_as_pem_too(recording, supervisor, tmp_path):
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        anchors.private_key()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    result = run_verifier(download(recording, supervisor), pem, tmp_path)
    assert result.returncode == 0, result.stdout


def test_one_changed_byte_in_any_member_fails(recording, supervisor, public_key, tmp_path):
    contents = members(download(recording, supervisor))
    for name in [n for n in contents if n != "manifest.sig"]:
        altered = dict(contents)
        data = bytearray(contents[name])
        data[len(data) // 2] ^= 0x01
        altered[name] = bytes(data)
        result = run_verifier(rezip(altered), public_key, tmp_path)
        assert result.returncode == 1, name
        assert "検証失敗" in result.stdout
        if name == "manifest.json":
            assert "signature" in result.stdout
        else:
            assert name in result.stdout


def test_a_manifest_signed_with_another_key_fails(recording, supervisor, public_key, tmp_path):
    contents = members(download(recording, supervisor))
    contents["manifest.sig"] = Ed25519PrivateKey.generate().sign(contents["manifest.json"])
    result = run_verifier(rezip(contents), public_key, tmp_path)
    assert result.returncode == 1
    assert "signature" in result.stdout


def test_a_missing_or_an_added_member_fails(recording, supervisor, public_key, tmp_path):
    contents = members(download(recording, supervisor))
    missing = {k: v for k, v in contents.items() if k != "consent.json"}
    result = run_verifier(rezip(missing), public_key, tmp_path)
    assert result.returncode == 1
    assert "missing: consent.json" in result.stdout
    added = {**contents, "extra.txt": b"added later"}
    result = run_verifier(rezip(added), public_key, tmp_path)
    assert result.returncode == 1
    assert "extra.txt" in result.stdout


def test_the_rezipped_unchanged_package_still_verifies(recording, supervisor, public_key, tmp_path):
    """The check is of the members' bytes, not of the ZIP's layout (a control for the above)."""
    result = run_verifier(rezip(members(download(recording, supervisor))), public_key, tmp_path)
    assert result.returncode == 0, result.stdout


def test_each_download_is_audited(recording, compliance_officer):
    download(recording, compliance_officer)
    event = AccessEvent.objects.filter(recording_id=recording.pk).order_by("-seq").first()
    assert event.action == Action.DOWNLOAD
    assert event.purpose == "evidence"
    assert event.detail == {"channel": "evidence_package"}
    assert event.actor == compliance_officer


def test_an_operator_is_refused(client, recording, operator):
    with pytest.raises(NotAllowed):
        evidence.package(recording, by=operator.user)
    client.force_login(operator.user)
    url = reverse("admin:recordings_recording_evidence", args=[recording.pk])
    assert client.post(url).status_code in (302, 403)
    assert not AccessEvent.objects.filter(
        recording_id=recording.pk, action=Action.DOWNLOAD
    ).exists()


def test_an_operator_with_admin_access_gets_403(client, recording, operator):
    operator.user.is_staff = True
    operator.user.save()
    client.force_login(operator.user)
    url = reverse("admin:recordings_recording_evidence", args=[recording.pk])
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 403


def test_a_sealed_recording_is_refused_and_the_refusal_audited(recording, supervisor):
    retention.seal([recording], by=supervisor, reason="利用停止の請求")
    recording.refresh_from_db()
    with pytest.raises(NotAllowed):
        evidence.package(recording, by=supervisor)
    event = AccessEvent.objects.filter(recording_id=recording.pk).order_by("-seq").first()
    assert event.action == Action.REFUSED
    assert event.detail == {"reason": "sealed", "channel": "evidence_package"}


def test_a_recording_without_the_evidence_purpose_is_refused(notice, operator, supervisor):
    recording = factories.stored_recording(operator, audio=AUDIO)
    assert evidence.check(recording).reason == "not_announced"
    with pytest.raises(NotAllowed):
        evidence.package(recording, by=supervisor)


def test_a_supervisor_downloads_it_from_the_recording_page(
    client, recording, supervisor, public_key, tmp_path
):
    client.force_login(supervisor)
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))
    url = reverse("admin:recordings_recording_evidence", args=[recording.pk])
    assert url in page.content.decode()
    assert "証拠パッケージをダウンロード" in page.content.decode()
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"evidence-{recording.sid}.zip" in response["Content-Disposition"]
    package = b"".join(response.streaming_content)
    assert run_verifier(package, public_key, tmp_path).returncode == 0


def test_the_verifier_imports_nothing_of_the_product():
    allowed = set(sys.stdlib_module_names) | {"cryptography"}
    for path in (BASE_DIR / "evidence_verify").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


# --- leaving the company: through the provision ledger ----------------------------------------


def hand_to_lawyer(recording, by):
    from datetime import date

    from recordings import provision
    from recordings.models import ProvisionRecord

    return provision.provide(
        recording,
        by=by,
        recipient="山田法律事務所 弁護士 山田太郎",
        recipient_kind=ProvisionRecord.RecipientKind.LAWYER,
        recipient_address="東京都千代田区霞が関1-1-1",
        items=[ProvisionRecord.Item.EVIDENCE_PACKAGE],
        basis=ProvisionRecord.Basis.CONSENT,
        consent_method=ProvisionRecord.ConsentMethod.WRITTEN,
        consent_obtained_at=date(2026, 11, 30),
        consent_statement="同意書（署名済み）を受領、監督者が確認。",
    )


def test_handed_outside_the_package_is_the_provisions_one_download_and_verifies(
    recording, supervisor, public_key, tmp_path
):
    from recordings import provision

    record = hand_to_lawyer(recording, supervisor)
    package = b"".join(provision.open_export(record, by=supervisor))
    assert run_verifier(package, public_key, tmp_path).returncode == 0
    contents = members(package)
    assert contents[f"audio/{recording.sid}.wav"] == AUDIO
    inside = json.loads(contents["provision.json"])["provision_record"]
    assert inside["id"] == record.pk
    assert inside["recipient_name"] == "山田法律事務所 弁護士 山田太郎"
    manifest = json.loads(contents["manifest.json"])
    assert manifest["provision_record"] == {
        "id": record.pk,
        "recipient": "山田法律事務所 弁護士 山田太郎",
        "basis": "consent",
    }
    assert "provision.json" in {member["name"] for member in manifest["members"]}
    # One DOWNLOAD event, as an evidence package and of this provision, after the hand-over.
    downloads = AccessEvent.objects.filter(action=Action.DOWNLOAD, recording_id=recording.pk)
    assert [event.detail for event in downloads] == [
        {"channel": "evidence_package", "provision": record.pk}
    ]
    assert AccessEvent.objects.filter(
        action=Action.THIRD_PARTY_PROVISION, recording_id=recording.pk
    ).exists()
    # The package's own audit events end with its download.
    events = json.loads(contents["audit.json"])["events"]
    assert [event["action"] for event in events][-2:] == ["third_party_provision", "download"]
    with pytest.raises(provision.ExportRefused):
        provision.open_export(record, by=supervisor)


def test_a_package_for_outside_needs_the_evidence_purpose(notice, operator, supervisor):
    from django.core.exceptions import ValidationError

    from recordings.models import ProvisionRecord

    recording = factories.stored_recording(operator, audio=AUDIO)
    with pytest.raises(ValidationError) as refused:
        hand_to_lawyer(recording, supervisor)
    assert "items" in refused.value.message_dict
    assert not ProvisionRecord.objects.exists()


def test_the_package_page_offers_the_hand_over_with_the_package_chosen(
    client, recording, supervisor
):
    client.force_login(supervisor)
    page = client.get(reverse("admin:recordings_recording_evidence", args=[recording.pk]))
    provide = reverse("admin:recordings_provisionrecord_provide", args=[recording.pk])
    text = page.content.decode()
    assert f"{provide}?items=evidence_package" in text
    assert "社外の方に渡す" in text
    form = client.get(provide, {"items": "evidence_package"}).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="items"[^>]*>', form)
    assert [box for box in boxes if " checked" in box] == [
        '<input type="checkbox" name="items" value="evidence_package" id="id_items_3" checked>'
    ]
