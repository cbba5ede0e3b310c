"""The architecture picture of docs/ARCHITECTURE.md, as text: the boxes and arrows below are its
source, and this script draws them as SVG (no dependency beyond Python).

    python docs/diagram.py            # rewrites docs/architecture.svg

A unit test (tests/unit/test_docs.py) fails when the committed SVG is not what this draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).with_name("architecture.svg")


@dataclass(frozen=True)
class Box:
    key: str
    column: int
    row: float
    title: str
    detail: str  # the code that is this box, or what it holds
    kind: str = "service"  # service | kafka | store | client


# Left to right, the way one record travels.
BOXES = [
    Box("clients", 0, 0, "original clients", "curl, the AWS emulator", "client"),
    Box("emulator", 0, 1, "emulator", "services/emulator"),
    Box("ingest", 1, 0.5, "ingest API", "services/ingest_api"),
    Box("raw", 2, 0.5, "raw topics", "pinterest.pin, streaming-…", "kafka"),
    Box("cleaner", 3, 0.5, "cleaner", "services/cleaner"),
    Box("clean", 4, 0, "clean topics", "pinpipe.clean.pin|geo|user", "kafka"),
    Box("dlq", 4, 1, "DLQ", "pinpipe.dlq", "kafka"),
    Box("aggregator", 5, 0, "aggregator", "services/aggregator (Faust)"),
    Box("sink", 5, 1, "s3 sink", "services/s3_sink"),
    Box("live", 6, 0, "live answers", "GET /aggregates/…", "client"),
    Box("lake", 6, 1, "lake", "Parquet on S3 or file://", "store"),
    Box("batch", 7, 1, "batch answers", "batch/ (DuckDB, Spark)", "client"),
]
# (from, to, route): "straight", or "below" (down from the source, along under every box, up
# into the target) for an arrow that would cross a box
ARROWS = [
    ("clients", "ingest", "straight"),
    ("emulator", "ingest", "straight"),
    ("ingest", "raw", "straight"),
    ("raw", "cleaner", "straight"),
    ("raw", "sink", "below"),
    ("cleaner", "clean", "straight"),
    ("cleaner", "dlq", "straight"),
    ("clean", "aggregator", "straight"),
    ("clean", "sink", "straight"),
    ("aggregator", "live", "straight"),
    ("sink", "lake", "straight"),
    ("lake", "batch", "straight"),
]
FILL = {"service": "#dbe9f6", "kafka": "#fbe3c2", "store": "#dcefd9", "client": "#eeeeee"}
WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 150, 52, 34, 40, 16


def _corner(box: Box) -> tuple[float, float]:
    return MARGIN + box.column * (WIDTH + GAP_X), MARGIN + 20 + box.row * (HEIGHT + GAP_Y)


def render() -> str:
    """The SVG text of the picture (deterministic: the test compares it byte for byte)."""
    by_key = {box.key: box for box in BOXES}
    columns = max(box.column for box in BOXES) + 1
    rows = max(box.row for box in BOXES) + 1
    width = 2 * MARGIN + columns * WIDTH + (columns - 1) * GAP_X
    lane = MARGIN + 20 + rows * HEIGHT + (rows - 1) * GAP_Y + 14  # under every box
    height = lane + 24 + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<text x="{MARGIN}" y="{MARGIN + 4}" font-size="13" font-weight="bold">'
        "pinpipe: one record, left to right</text>",
    ]
    for source, target, route in ARROWS:
        sx, sy = _corner(by_key[source])
        tx, ty = _corner(by_key[target])
        if route == "below":
            points = [
                (sx + WIDTH / 2, sy + HEIGHT),
                (sx + WIDTH / 2, lane),
                (tx + WIDTH / 2, lane),
                (tx + WIDTH / 2, ty + HEIGHT),
            ]
        else:
            points = [(sx + WIDTH, sy + HEIGHT / 2), (tx, ty + HEIGHT / 2)]
        path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="#555" stroke-width="1.4" '
            'marker-end="url(#arrow)"/>'
        )
    for box in BOXES:
        x, y = _corner(box)
        parts += [
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{WIDTH}" height="{HEIGHT}" rx="6" '
            f'fill="{FILL[box.kind]}" stroke="#777"/>',
            f'<text x="{x + WIDTH / 2:.0f}" y="{y + 21:.0f}" font-size="13" '
            f'text-anchor="middle" font-weight="bold">{escape(box.title)}</text>',
            f'<text x="{x + WIDTH / 2:.0f}" y="{y + 39:.0f}" font-size="9.5" '
            f'text-anchor="middle" fill="#333">{escape(box.detail)}</text>',
        ]
    parts.append(
        f'<text x="{MARGIN}" y="{height - MARGIN + 4:.0f}" font-size="10" fill="#555">'
        "blue: a pinpipe service · orange: Kafka topics · green: the lake · grey: clients "
        "and readers · the sink writes raw and clean records to the lake</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
