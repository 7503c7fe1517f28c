"""Screenshots compared with the committed ones (docs/), within a tolerance that fonts' anti-aliasing
passes and a chart that did not draw does not. TM_UPDATE_SCREENSHOTS=1 rewrites the committed files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PIL import Image, ImageChops

# A pixel "differs" when a channel moved by more than 48 of 255; at most 0.5 % of pixels may.
CHANNEL_TOLERANCE = 48
MAX_DIFFERING = 0.005
MAX_HEIGHT_CHANGE = 8


def differing_share(new: Path, ref: Path) -> float:
    """The share of pixels that differ (images of different heights compare over the common part
    plus every extra row, which counts as differing)."""
    a = Image.open(new).convert("RGB")
    b = Image.open(ref).convert("RGB")
    if a.width != b.width:
        return 1.0
    h = min(a.height, b.height)
    diff = ImageChops.difference(a.crop((0, 0, a.width, h)), b.crop((0, 0, b.width, h)))
    mask = diff.convert("L").point(lambda v: 255 if v > CHANNEL_TOLERANCE else 0)
    changed = mask.histogram()[255] + abs(a.height - b.height) * a.width
    return changed / (a.width * max(a.height, b.height))


def compare_or_update(new: Path, ref: Path, *, update: bool | None = None) -> None:
    if update is None:
        update = os.environ.get("TM_UPDATE_SCREENSHOTS") == "1"
    if update or not ref.exists():
        if not update:
            raise AssertionError(f"{ref} is missing: run the test with TM_UPDATE_SCREENSHOTS=1 and commit it")
        ref.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(new, ref)
        return
    a, b = Image.open(new), Image.open(ref)
    share = differing_share(new, ref)
    if share > MAX_DIFFERING or abs(a.height - b.height) > MAX_HEIGHT_CHANGE:
        kept = Path(new)
        raise AssertionError(
            f"screenshot {new.name} differs from {ref} in {share:.1%} of its pixels ({a.size} vs {b.size}); "
            f"if the change is meant, rerun with TM_UPDATE_SCREENSHOTS=1 (new image kept under {kept})"
        )
