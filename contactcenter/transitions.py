"""State machines written once as data, and the one way to move a row from state to state.

Each machine names its field and, for every state, the states it may move to. A transition
is one conditional ``UPDATE … SET field = new WHERE … AND field IN (allowed predecessors)``:
it applies only if the row is, at that instant, in a state that may become the new one, so
a late or concurrent writer can never overwrite a state that moved on meanwhile, and an
illegal move is refused instead of written. Callers learn whether it applied.
"""

from django.utils import timezone


class StateMachine:
    """The allowed moves of one field: ``{state: {states it may become}}``."""

    def __init__(self, field, moves):
        self.field = field
        self.moves = {state: frozenset(targets) for state, targets in moves.items()}
        self._predecessors = {
            target: frozenset(state for state, targets in self.moves.items() if target in targets)
            for target in self.moves
        }

    def __repr__(self):
        return f"<StateMachine {self.field}>"

    @property
    def states(self):
        return frozenset(self.moves)

    def allows(self, current, new):
        return new in self.moves.get(current, ())

    def predecessors(self, state):
        """The states a row may be in for a move to ``state`` to apply."""
        if state not in self._predecessors:
            raise ValueError(f"unknown {self.field} {state!r}")
        return self._predecessors[state]

    def apply(self, queryset, *, to, only_from=None, **fields):
        """Move every row of ``queryset`` that may become ``to`` (and, given ``only_from``,
        is in one of those states) to ``to``, writing ``fields`` with it, in one UPDATE;
        return how many rows moved. ``updated_at`` is kept current where the model has it."""
        allowed = self.predecessors(to)
        if only_from is not None:
            allowed = allowed & frozenset(only_from)
        if not allowed:
            return 0
        if "updated_at" not in fields and _has_field(queryset.model, "updated_at"):
            fields["updated_at"] = timezone.now()
        return queryset.filter(**{f"{self.field}__in": sorted(allowed)}).update(
            **{self.field: to}, **fields
        )


def _has_field(model, name):
    return any(field.name == name for field in model._meta.concrete_fields)
