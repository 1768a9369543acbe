"""The app against fastai's own `learn.predict`, on the same photos, and its trust fields' quality.

Needs a finished run (`python -m curation run shoes`): it serves that model (with its companion, as
an ensemble, when the run trained one: then also the companion's cost and the model alone). Measured, warm:
- latency of one 240 px photo (test photos, held out of the app's references so that each is new
  to it, as a user's photo is; over HTTP the server holds them, and they take the exact-copy path):
  the bare forward pass of the model on a ready tensor; our
  preprocessing + forward (ModelRunner); the whole answer with every trust field in process
  (TrustedPredictor.predict); the same over HTTP from a real server; fastai's `learn.predict`;
- start-up of the server: launch to the first healthy answer (warm cache);
- `no_class`: real photos of other things (scikit-image's) and made graphics, all to be flagged;
  the shoes test split, none to be flagged;
- `copy_of`: planted copies of training images (byte-identical, and re-encoded with a 5% border
  cropped and resized to 85%), all to be named, with the right original or one of the dataset's
  own copies of it (the leakage audit's pairs).

Run: python bench/bench_app.py shoes [--reports-dir reports] [--cache-dir DIR] [--photos 40]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATION_PROGRESS", "0")

OTHER_THINGS = ("astronaut", "coffee", "rocket", "chelsea", "page", "camera", "horse", "text", "coins", "brick",
                "clock", "moon", "immunohistochemistry", "hubble_deep_field", "colorwheel", "cat", "retina", "motorcycle_left")


def _timed(fn, repeats: int) -> np.ndarray:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return np.array(times) * 1000


def _jpeg(image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _other_things() -> dict[str, bytes]:
    import skimage.data

    from tests.foreign_images import _as_rgb, not_available_graphic

    images = {}
    for name in OTHER_THINGS:
        try:
            images[name] = _jpeg(_as_rgb(getattr(skimage.data, name)()))
        except Exception:  # a picture this skimage does not ship (or must download): left out, said
            print(f"  (skimage has no {name} here)")
    images["graphic: image not available"] = _jpeg(not_available_graphic())
    from PIL import Image, ImageDraw

    logo = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(logo).ellipse([60, 60, 240, 240], fill=(200, 30, 30))
    images["graphic: red disc logo"] = _jpeg(logo)
    return images


def hold_out(predictor, split: str, cache_dir) -> None:
    """Make `split`'s photos new to the app: out of its reference images and its duplicate index, so
    that every answer goes the whole way (no exact-copy shortcut), as a user's new photo does."""
    from dataclasses import replace

    from curation.app.evidence import CopyFinder
    from curation.cache import ContentCache

    refs = predictor.references
    keep = (refs.table["split"] != split).to_numpy()
    predictor.references = replace(refs, table=refs.table[keep].reset_index(drop=True), vectors=refs.vectors[keep],
                                   lite0=refs.lite0[keep])
    with ContentCache(cache_dir) as cache:
        predictor.copies = CopyFinder(predictor.references, predictor.root, cache)


def latency(predictor, photos: list[bytes]) -> dict:
    import torch

    from curation.app.inputs import read_photo

    decoded = [read_photo(p).image for p in photos]
    runner = predictor.runner
    batch = runner._batch([decoded[0]])
    with torch.inference_mode():
        bare = _timed(lambda: runner.model(batch), len(photos))
    bare_runtime = _timed(lambda: runner.logits([decoded[0]]), len(photos)) if runner.backend == "openvino" else None
    ours_model = np.concatenate([_timed(lambda im=im: runner.log_probs([im]), 1) for im in decoded])
    ours_all = np.concatenate([_timed(lambda p=p: predictor.predict(p), 1) for p in photos])
    fastai = []
    for p in photos[:20]:
        image = __import__("fastai.vision.core", fromlist=["PILImage"]).PILImage.create(p)
        fastai.append(_timed(lambda im=image: runner.learn.predict(im), 1)[0])
    figures = {"bare forward (torch, as trained)": bare,
               **({"preprocessing + forward in OpenVINO": bare_runtime} if bare_runtime is not None else {}),
               "ours: preprocessing + forward + softmax": ours_model,
               "ours: every trust field, in process": ours_all, "fastai learn.predict": np.array(fastai)}
    if predictor.companion is not None:  # what serving the ensemble costs over the model alone
        from dataclasses import replace

        alone = replace(predictor, companion=None)
        figures[f"companion: 2 views in {predictor.companion.backend}"] = np.concatenate(
            [_timed(lambda im=im: predictor.companion.probabilities([im]), 1) for im in decoded])
        figures["ours: every trust field, model alone"] = np.concatenate(
            [_timed(lambda p=p: alone.predict(p), 1) for p in photos])
    return figures


def over_http(args, photos: list[bytes]) -> tuple[float, np.ndarray]:
    import httpx

    from curation.localhost import free_port

    port = free_port()
    argv = [sys.executable, "-m", "curation.app", args.data, "--reports-dir", str(args.reports_dir), "--port", str(port)]
    if args.evidence:
        argv += ["--evidence", args.evidence]
    if args.cache_dir:
        argv += ["--cache-dir", str(args.cache_dir)]
    began = time.perf_counter()
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        startup = time.perf_counter() - began
        with httpx.Client(timeout=60) as client:
            client.post(f"http://127.0.0.1:{port}/api/predict", files={"file": ("w.jpg", photos[0])})
            times = np.concatenate([_timed(lambda p=p: client.post(f"http://127.0.0.1:{port}/api/predict",
                                                                  files={"file": ("p.jpg", p)}), 1) for p in photos])
    finally:
        server.terminate()
        server.wait(timeout=30)
    return startup, times


def copy_partners(report_dir: Path) -> dict[str, set[str]]:
    """path -> the dataset's own copies of it (the leakage audit's exact and near-duplicate pairs):
    a copy of a training image may rightly be named as a copy of its twin."""
    import pandas as pd

    partners: dict[str, set[str]] = {}
    path = report_dir / "leakage" / "pairs.csv"
    if path.is_file():
        pairs = pd.read_csv(path, keep_default_na=False)
        for a, b in pairs.loc[pairs["kind"].isin(["exact", "near_duplicate"]), ["path_a", "path_b"]].itertuples(index=False):
            partners.setdefault(a, set()).add(b)
            partners.setdefault(b, set()).add(a)
    return partners


def quality(predictor, root: Path, table, report_dir: Path) -> dict:
    from PIL import Image

    others = _other_things()
    flagged_others = {name: predictor.predict(data)["no_class"] for name, data in others.items()}
    test = table[(table["split"] == "test") & (table["load_error"] == "")]
    flagged_shoes = [row.path for row in test.itertuples() if predictor.predict((root / row.path).read_bytes())["no_class"]]
    train = table[(table["split"] == "train") & (table["load_error"] == "")].sample(30, random_state=0)
    found = {"exact": 0, "edited": 0}
    missed = []
    partners = copy_partners(report_dir)
    for row in train.itertuples():
        data = (root / row.path).read_bytes()
        accepted = {row.path, *partners.get(row.path, ())}
        if (predictor.predict(data)["copy_of"] or {}).get("path") in accepted:
            found["exact"] += 1
        image = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = image.size
        edited = image.crop((int(0.05 * w), int(0.05 * h), int(0.95 * w), int(0.95 * h))).resize((int(0.85 * w), int(0.85 * h)))
        answer = predictor.predict(_jpeg(edited, 75))["copy_of"]
        if (answer or {}).get("path") in accepted:
            found["edited"] += 1
        else:
            missed.append(row.path)
    return {"others": flagged_others, "shoes_flagged": flagged_shoes, "shoes_checked": len(test),
            "copies": found, "copies_planted": len(train), "copies_missed": missed}


def main() -> int:
    import torch

    from curation.app.predictor import TrustedPredictor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", default="shoes")
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--evidence", default=None, help="backbones of the evidence vectors (default: the app's)")
    args = parser.parse_args()
    options = {"evidence": args.evidence} if args.evidence else {}
    predictor = TrustedPredictor.load(args.data, reports_dir=args.reports_dir, cache_dir=args.cache_dir, **options)
    from curation.cache import ContentCache
    from curation.scan import scan_dataset

    with ContentCache(args.cache_dir) as cache:
        table = scan_dataset(args.data, reports_dir=args.reports_dir, cache=cache).table
    test = table[(table["split"] == "test") & (table["load_error"] == "")].head(args.photos)
    photos = [(predictor.root / p).read_bytes() for p in test["path"]]
    hold_out(predictor, "test", args.cache_dir)
    print(f"torch threads {torch.get_num_threads()}; {len(photos)} test photos of {predictor.dataset} "
          f"({predictor.metadata['arch']} at {predictor.metadata['image_size']} px)")
    figures = latency(predictor, photos)
    results = quality(predictor, predictor.root, table, args.reports_dir / predictor.dataset)
    del predictor  # the server below gets the cores to itself
    startup, http = over_http(args, photos)
    figures["ours: every trust field, over HTTP"] = http
    bare = np.median(figures["bare forward (torch, as trained)"])
    print(f"{'':40s} {'p50 ms':>8s} {'p95 ms':>8s} {'x bare p50':>10s}")
    for name, times in figures.items():
        print(f"{name:40s} {np.median(times):8.1f} {np.percentile(times, 95):8.1f} {np.median(times) / bare:10.2f}")
    print(f"server start-up to first healthy answer (warm cache): {startup:.1f} s")
    others = results["others"]
    print(f"no_class on other things: {sum(others.values())}/{len(others)} flagged; "
          f"missed: {[k for k, v in others.items() if not v]}")
    print(f"no_class on the shoes test split: {len(results['shoes_flagged'])}/{results['shoes_checked']} flagged "
          f"{results['shoes_flagged']}")
    print(f"copy_of on planted copies of training images: exact {results['copies']['exact']}/{results['copies_planted']}, "
          f"edited {results['copies']['edited']}/{results['copies_planted']}; missed {results['copies_missed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
