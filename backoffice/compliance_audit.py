"""The compliance report's audit trail section: the period's events verified link by link
from the newest signed checkpoint before them, and every checkpoint against the chain."""

from django.utils.translation import gettext as _

from audit.models import AccessEvent
from audit.services import GENESIS_HASH, HASHED_FIELDS, event_hash

from .compliance_base import (
    EXCEPTIONS_LISTED,
    Action,
    changelist,
    figure,
    section,
)

# --- the audit trail ------------------------------------------------------------------------


def verify_segment(first_seq, last_seq, checkpoints):
    """Walk the chain from the newest good checkpoint before ``first_seq`` (or from the
    start) to ``last_seq``: each event's hash, its link to the one before, no gap, time never
    going back. Returns ``(ok, checked, problem, anchor_seq)``.

    Starting from a signed checkpoint that still matches the chain proves the period's events
    descend from an anchored state without walking ten million older rows."""
    anchor = None
    for checkpoint in checkpoints:
        if checkpoint.signature_ok and checkpoint.seq < first_seq:
            anchor = checkpoint
    previous_hash, expected = GENESIS_HASH, 1
    if anchor is not None:
        previous_hash, expected = anchor.hash, anchor.seq + 1
    rows = (
        AccessEvent.objects.filter(seq__gte=expected, seq__lte=last_seq)
        .order_by("seq")
        .values(*HASHED_FIELDS, "hash")
    )
    checked, previous_time = 0, None
    for row in rows.iterator(chunk_size=2000):
        problem = ""
        if row["seq"] != expected:
            problem = f"event {expected} is missing"
        elif row["previous_hash"] != previous_hash:
            problem = f"event {row['seq']}: previous hash does not match"
        elif event_hash(row) != row["hash"]:
            problem = f"event {row['seq']}: its content does not match its hash (edited)"
        elif previous_time is not None and row["occurred_at"] < previous_time:
            problem = f"event {row['seq']}: its time is earlier than the event before"
        if problem:
            return False, checked, problem, anchor.seq if anchor else 0
        checked += 1
        expected += 1
        previous_hash, previous_time = row["hash"], row["occurred_at"]
    if expected <= last_seq:
        return False, checked, f"event {expected} is missing", anchor.seq if anchor else 0
    return True, checked, "", anchor.seq if anchor else 0


def audit_trail(period):
    from audit import anchors

    first = period.events.order_by("occurred_at", "seq").values_list("seq", flat=True).first()
    last = period.events.order_by("-occurred_at", "-seq").values_list("seq", flat=True).first()
    try:
        checkpoints = anchors.read_checkpoints()
        anchor_problems = anchors.check_chain_against_checkpoints(checkpoints)
    except anchors.AnchorError as error:
        checkpoints, anchor_problems = [], [str(error)]
    figures, exceptions = [], []
    covering = [c for c in checkpoints if c.signature_ok and last and c.seq >= last]
    if first is None:
        figures.append(figure(_("Audit events in the period"), 0))
    else:
        ok, checked, problem, anchor_seq = verify_segment(first, last, checkpoints)
        figures += [
            # The events are numbered without gaps, so the count is the difference of the
            # first and last sequence numbers (no COUNT over the trail).
            figure(_("Audit events in the period"), last - first + 1),
            figure(
                _("Events %(first)s to %(last)s verified link by link from %(anchor)s")
                % {
                    "first": first,
                    "last": last,
                    "anchor": _("checkpoint at event %(seq)s") % {"seq": anchor_seq}
                    if anchor_seq
                    else _("the start of the trail"),
                },
                _("verified") if ok else _("broken"),
                ok=ok,
                note=problem or _("%(count)s events checked") % {"count": checked},
            ),
            figure(
                _("A signed checkpoint covers the end of the period"),
                _("yes") if covering else _("not yet"),
                ok=bool(covering),
                note=""
                if covering
                else _("Events after the newest checkpoint are checked by their links only."),
            ),
        ]
        if not ok:
            exceptions.append({"text": problem, "url": changelist("audit_accessevent", seq=first)})
    figures += [
        figure(_("Signed checkpoints"), len(checkpoints)),
        figure(
            _("Checkpoints that disagree with the chain or do not verify"),
            len(anchor_problems),
            ok=not anchor_problems,
        ),
    ]
    exceptions += [{"text": problem, "url": ""} for problem in anchor_problems[:EXCEPTIONS_LISTED]]
    reports = period.events.filter(action=Action.COMPLIANCE_REPORT).count()
    figures.append(figure(_("Compliance reports produced"), reports))
    return section(
        "AUDIT",
        _("Access audit trail"),
        _(
            "Every access to audio and every decision about it is an event of an append-only "
            "hash chain; signed checkpoints of its head are written regularly, so an edited, "
            "removed or reordered event breaks a link or disagrees with a checkpoint."
        ),
        figures=figures,
        exceptions=exceptions,
        evidence=[
            {
                "label": _("Audit events of the period"),
                "url": changelist("audit_accessevent", **period.range("occurred_at")),
            }
        ],
    )
