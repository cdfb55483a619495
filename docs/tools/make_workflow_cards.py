"""Make the template-browser card of every workflow (``workflows/<name>.jpg``) from the browser test's screenshots.

Each card says what its workflow does in a title readable at card size, what it needs, and shows the workflow's
own graph as ComfyUI's page draws it (so no two cards look alike):

    INTERDYN_SCREENSHOTS=/tmp/shots python -m pytest tests/test_comfyui_browser.py   # screenshots + report.json
    python docs/tools/make_workflow_cards.py /tmp/shots ["SVD drag without training - native nodes" ...]

(after the folder, the names of the cards to make; all of them by default).

A maintainer's tool (not shipped in the wheel); needs Pillow and the DejaVu fonts (Debian: fonts-dejavu-core).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]
SIZE = 512
BAND = 150
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FONT_LIGHT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

#: workflow -> (title, what it needs / does)
CARDS = {
    "InterDyn toy physics - no downloads": ("Toy physics: runs as is", "built-in model, no downloads: a push, and what it moves"),
    "InterDyn hand pushes an object - SAM2 masks": ("A hand pushes an object", "SVD + InterDyn weights; first frame + hand masks"),
    "InterDyn draw the drive on the picture": ("Drive without a video", "draw the hand and its path on the picture: no video, no mask file"),
    "InterDyn several driving objects - SAM2": ("Several driving objects", "one colour per object mask (SAM2 or your own masks)"),
    "InterDyn in the core SVD graph - KSampler": ("InterDyn in ComfyUI's SVD graph", "core checkpoint loader, KSampler + Apply InterDyn"),
    "InterDyn drag without training - no downloads": ("Drag without training", "dual-clock denoising on any SVD, no InterDyn branch: runs as is"),
    "SVD drag without training - native nodes": ("Drag with ComfyUI's own SVD nodes", "core nodes + Cut and Drag Reference, two KSampler (Advanced): no InterDyn branch"),
}


def _wrap(draw, text, font, width):
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + [line]


def card(screenshot: Path, nodes: list[dict], title: str, subtitle: str) -> Image.Image:
    shot = Image.open(screenshot).convert("RGB")
    left = max(0, min(n["screen"][0] for n in nodes) - 10)
    top = max(0, min(n["screen"][1] for n in nodes) - 10)
    right = min(shot.width, max(n["screen"][0] + n["screen"][2] for n in nodes) + 10)
    bottom = min(shot.height, max(n["screen"][1] + n["screen"][3] for n in nodes) + 10)
    graph = shot.crop((int(left), int(top), int(right), int(bottom)))
    area = (SIZE, SIZE - BAND)
    scale = min(area[0] / graph.width, area[1] / graph.height)
    graph = graph.resize((max(1, round(graph.width * scale)), max(1, round(graph.height * scale))), Image.LANCZOS)
    out = Image.new("RGB", (SIZE, SIZE), (32, 33, 38))
    out.paste(graph, ((SIZE - graph.width) // 2, BAND + (area[1] - graph.height) // 2))
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, SIZE, BAND), fill=(24, 60, 110))
    big, small = ImageFont.truetype(FONT, 38), ImageFont.truetype(FONT_LIGHT, 21)
    y = 14
    for line in _wrap(draw, title, big, SIZE - 28)[:2]:
        draw.text((14, y), line, font=big, fill=(255, 255, 255))
        y += 46
    for line in _wrap(draw, subtitle, small, SIZE - 28)[:2]:
        draw.text((14, y + 4), line, font=small, fill=(210, 225, 245))
        y += 26
    return out


def main(argv=None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    shots, only = Path(args[0]), set(args[1:])
    unknown = only - set(CARDS)
    if unknown:
        raise SystemExit(f"no card for {sorted(unknown)}; cards: {sorted(CARDS)}")
    report = json.loads((shots / "report.json").read_text())
    for name, (title, subtitle) in CARDS.items():
        if only and name not in only:
            continue
        info = report["workflows"][f"{name}.json"]
        image = card(Path(info["screenshot"]), info["nodes"], title, subtitle)
        image.save(REPO / "workflows" / f"{name}.jpg", quality=88)
        print(f"workflows/{name}.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
