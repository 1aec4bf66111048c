"""Small server-rendered SVG charts: no JavaScript, nothing from a CDN, allowed by the CSP."""

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 300, 80, 4


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


def bars(values, labels):
    """One bar per value, scaled to the largest; ``label`` is the bar's tooltip (``<title>``)."""
    top = max(values, default=0) or 1
    step = WIDTH / max(len(values), 1)
    result = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = (HEIGHT - PAD) * value / top
        result.append(
            Bar(
                x=round(index * step + 1, 2),
                y=round(HEIGHT - height, 2),
                width=round(max(step - 2, 1), 2),
                height=round(height, 2),
                label=label,
            )
        )
    return result


def line(values):
    """The ``points`` of a polyline for percentages (0–100); days without a value are skipped."""
    step = WIDTH / max(len(values) - 1, 1)
    points = []
    for index, value in enumerate(values):
        if value is None:
            continue
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / 100
        points.append(f"{round(index * step, 2)},{round(y, 2)}")
    return " ".join(points)
