"""Benchmark: training on the shoes set (train for training, test as validation) on this machine.

Runs, in one process and on the same images:
  1. the offline-pretrained run: tf_efficientnet_lite0/1/2 (--arch) with the packaged ImageNet weights through
     our pipeline (resized-image cache, frozen epochs, discriminative rates, augmentations);
  2. a convnext trained from scratch (no convnext weights exist offline), for comparison;
  3. the input pipeline alone, ours (cached 224 px JPEGs) against plain fastai
     (`ImageDataLoaders.from_folder` decoding and resizing the 240 px originals every epoch).
Reports test error (the epoch kept by lowest test error, as the original project did, and the
last epoch, which is the honest figure), TTA error, seconds per epoch and in total.

Usage: nice -n 10 python bench/bench_training.py [--threads 1] [--image-size 224] ...
Writes bench/out/training/results_<tag>.json and the usual reports under bench/out/training/reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from curation.cache import ContentCache  # noqa: E402
from curation.scan import scan_dataset  # noqa: E402
from training.config import AugmentConfig, TrainConfig  # noqa: E402
from training.pipeline import train_dataset  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "training"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared/datasets/shoes"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", default="tf_efficientnet_lite0", help="a backbone with offline weights (lite0/1/2)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--seed", type=int, default=TrainConfig().seed)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--frozen-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lr-mult", type=float, default=10.0)
    parser.add_argument("--crop-min-scale", type=float, default=0.75)
    parser.add_argument("--max-rotate", type=float, default=15.0, help="degrees of random rotation (0: none)")
    parser.add_argument("--frozen-stages", type=int, default=0, help="stem + this many stages kept pretrained")
    parser.add_argument("--norm-statistics", default=TrainConfig().norm_statistics,
                        help="batch-norm layers keeping pretrained statistics: fixed-stages, pretrained or batch")
    parser.add_argument("--average-epochs", type=float, default=0.0, help="weight averaging window (0: off)")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing (0: plain cross-entropy)")
    parser.add_argument("--last-epoch", action="store_true",
                        help="keep the last epoch (no selection on test): the evaluation and TTA error are honest")
    parser.add_argument("--scratch-arch", default="convnext_atto")
    parser.add_argument("--scratch-size", type=int, default=128)
    parser.add_argument("--scratch-epochs", type=int, default=3)
    parser.add_argument("--companion", action="store_true",
                        help="also train the companion model (training.companion) and report the ensemble's errors")
    parser.add_argument("--tag", default="run", help="names this run's results file: results_<tag>.json")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pretrained", "scratch", "loading"])
    return parser.parse_args()


def summarize(run) -> dict:
    history = run.fit.history
    test = run.evaluation.metrics["test"]["full"]
    return {
        "arch": run.metadata["arch"],
        "weights_source": run.metadata["weights_source"],
        "image_size": run.metadata["image_size"],
        "epochs": len(history),
        "test_error_kept_epoch": test["error"],
        "test_error_ci95": test["error_ci95"],
        "tta_error_kept_epoch": test["tta_error"],
        "test_error_last_epoch": history[-1]["error_rate"],
        "kept_epoch": run.metadata["selected_epoch"],
        "error_by_epoch": [round(row["error_rate"], 4) for row in history],
        "seconds_per_epoch": [row["seconds"] for row in history],
        "cpu_seconds_per_epoch": [row["cpu_seconds"] for row in history],
        "train_seconds": run.metadata["timing"]["total_seconds"],
        "per_class": test["per_class"],
        "ensemble_error": test.get("ensemble_error"),  # with --companion: the mean of model and companion
    }


def time_loading(data: Path, cache: ContentCache, scanned, size: int) -> dict:
    """One pass over the train batches (inputs only, no model): ours against plain fastai."""
    from fastai.vision.all import ImageDataLoaders, Resize, aug_transforms

    from training.data import make_dataloaders, resized_images, split_usable

    rows = split_usable(scanned.table).usable
    train, test = rows[rows["split"] == "train"], rows[rows["split"] == "test"]
    config = TrainConfig(image_size=size, augment=AugmentConfig(crop_min_scale=0))
    images = resized_images(rows, scanned.dataset.root, cache=cache, size=size)
    ours = make_dataloaders(train, test, images, sorted(train["label"].unique()), config, mean=(0.5,) * 3, std=(0.5,) * 3)
    plain = ImageDataLoaders.from_folder(data, train="train", valid="test", item_tfms=Resize(size), bs=32, num_workers=0,
                                         batch_tfms=aug_transforms())
    result = {}
    for name, dls in (("ours_cached", ours), ("plain_fastai", plain)):
        started = time.perf_counter()
        for _ in dls.train:
            pass
        result[f"{name}_seconds_per_epoch"] = round(time.perf_counter() - started, 2)
    result["speedup"] = round(result["plain_fastai_seconds_per_epoch"] / result["ours_cached_seconds_per_epoch"], 2)
    return result


def main() -> int:
    args = parse()
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    torch.set_num_threads(args.threads)  # 1 thread stays steady when other work shares the cores
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads,
                     "load_average_at_start": os.getloadavg()}
    with ContentCache(OUT / "cache") as cache:
        scanned = scan_dataset(args.data, reports_dir=OUT / "reports", cache=cache)
        augment = AugmentConfig(crop_min_scale=args.crop_min_scale, max_rotate=args.max_rotate)
        base = TrainConfig(arch=args.arch, image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
                           frozen_epochs=args.frozen_epochs, lr=args.lr, lr_mult=args.lr_mult, augment=augment,
                           threads=args.threads, valid_split="test", select_best=not args.last_epoch, seed=args.seed,
                           average_epochs=args.average_epochs, frozen_stages=args.frozen_stages,
                           label_smoothing=args.label_smoothing, norm_statistics=args.norm_statistics)
        if "pretrained" not in args.skip:
            run = train_dataset(scanned, base, cache=cache, out_dir=OUT / f"pretrained_{args.tag}",
                                companion=args.companion)
            results["pretrained"] = summarize(run) | {"companion": run.companion}
            print(json.dumps(results["pretrained"], indent=1), flush=True)
        if "scratch" not in args.skip:
            scratch = replace(base, arch=args.scratch_arch, pretrained=False, image_size=args.scratch_size,
                              epochs=args.scratch_epochs, frozen_epochs=0, lr=2e-3)
            run = train_dataset(scanned, scratch, cache=cache, out_dir=OUT / f"scratch_{args.tag}")
            results["convnext_scratch"] = summarize(run)
            print(json.dumps(results["convnext_scratch"], indent=1), flush=True)
        if "loading" not in args.skip:
            results["input_pipeline"] = time_loading(Path(args.data), cache, scanned, args.image_size)
            print(json.dumps(results["input_pipeline"], indent=1), flush=True)
    results["load_average_at_end"] = os.getloadavg()
    results["settings"] = vars(args)
    (OUT / f"results_{args.tag}.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
