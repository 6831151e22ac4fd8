"""Models saved as ``.npz``: arrays only (loaded with ``allow_pickle=False``), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_npz(path: Path, **arrays: Any) -> None:
    """Write ``arrays`` to ``path`` through a temporary file, so a reader never sees half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
