"""`python -m training.train DATA`: train a fastai + timm classifier on the train split.

Weights: --weights FILE (a state dict for --arch), else the hub where reachable, else the ImageNet
lite0 packaged with the project (for --arch tf_efficientnet_lite0 only); --no-pretrained trains
from random initialisation, --pretrained fails rather than fall back. The weights source used is
printed and recorded in model.json. Offline, the one pretrained choice is
--arch tf_efficientnet_lite0; a convnext (the default) then trains from scratch.

Writes reports/<dataset>/training/: model.pkl (fastai export; a pickle, load only trusted files),
model.json, and the evaluation of every non-train split (see `python -m training.evaluate`).
With --folds K also oof.parquet, fold_wrong.parquet, hard_examples.csv/png and folds.json.
The dataset is only read. Exit codes: 0 done; 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cache import ContentCache
from curation.cli import command_parser, run_cli
from training.config import DEFAULT_ARCH, NORM_STATISTICS, RESIZE_METHODS, AugmentConfig, TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m training.train", __doc__)
    d, a = TrainConfig(), AugmentConfig()
    parser.add_argument("--arch", default=DEFAULT_ARCH, help=f"any timm architecture name (default {DEFAULT_ARCH})")
    parser.add_argument("--weights", type=Path, help="a weights file (state dict) for --arch")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="require pretrained weights (--pretrained) or use none (--no-pretrained); "
                             "default: pretrained when weights can be found")
    parser.add_argument("--image-size", type=int, default=d.image_size)
    parser.add_argument("--resize-method", choices=RESIZE_METHODS, default=d.resize_method,
                        help="how validation images are brought to size (without random resized crop)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs with the whole network trainable")
    parser.add_argument("--frozen-epochs", type=int, default=d.frozen_epochs,
                        help="epochs training the head only first (pretrained weights only)")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--lr-mult", type=float, default=d.lr_mult,
                        help="discriminative rates: the earliest layers learn at lr/lr-mult")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--max-rotate", type=float, default=a.max_rotate, help="degrees (0: no rotation)")
    parser.add_argument("--min-zoom", type=float, default=a.min_zoom)
    parser.add_argument("--max-zoom", type=float, default=a.max_zoom)
    parser.add_argument("--crop-min-scale", type=float, default=a.crop_min_scale,
                        help="random resized crop's smallest area fraction (0: no random crop)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=a.flip)
    parser.add_argument("--max-lighting", type=float, default=a.max_lighting)
    parser.add_argument("--degrade", type=float, default=a.degrade,
                        help="probability of a blurred or heavily JPEG-compressed training copy (0: off)")
    parser.add_argument("--backdrop", type=float, default=a.backdrop,
                        help="probability of a plain-background training photo put on a made backdrop (0: off)")
    parser.add_argument("--valid-split", default="auto",
                        help="split monitored during training and used to keep the best epoch "
                             "(default: 'valid' if present, else none; e.g. 'test' as the original project did)")
    parser.add_argument("--select-best", action=argparse.BooleanOptionalAction, default=True,
                        help="keep the epoch with the lowest validation error (default) or the last one")
    parser.add_argument("--frozen-stages", type=int, default=d.frozen_stages,
                        help="pretrained only: keep the stem and this many first stages at their pretrained "
                             "weights in both phases (faster steps; 0: train everything)")
    parser.add_argument("--norm-statistics", choices=NORM_STATISTICS, default=d.norm_statistics,
                        help="pretrained only: batch-norm layers that keep their pretrained running statistics: "
                             "those of the fixed stages (default), all of the backbone's ('pretrained'), or none "
                             "('batch': they follow the training batches)")
    parser.add_argument("--average-epochs", type=float, default=d.average_epochs,
                        help="keep a moving average of the weights over about this many last epochs and "
                             "validate and export it (0: off)")
    parser.add_argument("--label-smoothing", type=float, default=d.label_smoothing,
                        help="train against labels smoothed by this much (0: plain cross-entropy)")
    parser.add_argument("--time-budget", type=float, default=d.time_budget, metavar="MIN",
                        help="minutes for the fit: the frozen epoch is timed and the unfrozen epochs cut to what "
                             "fits on this machine, never above --epochs (0: exactly --epochs)")
    parser.add_argument("--low-res-size", type=int, default=d.low_res_size, metavar="PX",
                        help="a smaller size for the first unfrozen epochs: with --time-budget, as many of them as "
                             "keep --epochs within the budget; else --low-res-epochs of them (0: always --image-size)")
    parser.add_argument("--low-res-epochs", type=int, default=d.low_res_epochs,
                        help="without --time-budget: how many first unfrozen epochs train at --low-res-size")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: all cores; 1 is steadier when other work shares the cores)")
    parser.add_argument("--folds", type=int, default=0, help="also train K fold models for out-of-fold probabilities")
    parser.add_argument("--companion", action="store_true",
                        help="also train a companion model on cached activations of the frozen stages (a few minutes "
                             "on 2 cores) and evaluate the two as an ensemble (training.companion)")
    parser.add_argument("--tta", type=int, default=4, help="augmented passes for the TTA error (0: none)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the evaluation of non-train splits")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    try:
        augment = AugmentConfig(max_rotate=args.max_rotate, min_zoom=args.min_zoom, max_zoom=args.max_zoom,
                                crop_min_scale=args.crop_min_scale, flip=args.flip, max_lighting=args.max_lighting,
                                degrade=args.degrade, backdrop=args.backdrop)
        return TrainConfig(arch=args.arch, weights=args.weights, pretrained=args.pretrained, image_size=args.image_size,
                           resize_method=args.resize_method, epochs=args.epochs, frozen_epochs=args.frozen_epochs,
                           lr=args.lr, lr_mult=args.lr_mult, batch_size=args.batch_size,
                           weight_decay=args.weight_decay, augment=augment, select_best=args.select_best,
                           average_epochs=args.average_epochs, frozen_stages=args.frozen_stages,
                           norm_statistics=args.norm_statistics,
                           label_smoothing=args.label_smoothing, time_budget=args.time_budget,
                           low_res_size=args.low_res_size, low_res_epochs=args.low_res_epochs, seed=args.seed,
                           threads=args.threads, valid_split=args.valid_split)
    except ValueError as exc:
        from curation.errors import CurationError

        raise CurationError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    from curation.cli import scan_from_args
    from training.evaluate import print_evaluation
    from training.pipeline import train_dataset

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        run = train_dataset(scanned, config, cache=cache, folds=args.folds, evaluate=not args.no_evaluate, tta=args.tta,
                            companion=args.companion)
    meta = run.metadata
    print(f"model: {meta['arch']}, weights from {meta['weights_source']}, {meta['image_size']} px, "
          f"{len(run.fit.history)} epochs in {meta['timing']['total_seconds']:.0f} s "
          f"({meta['timing']['seconds_per_epoch']} s/epoch, {meta['timing']['threads']} threads, {meta['timing']['device']})")
    if run.fit.schedule:
        print(f"time budget {config.time_budget:g} min: {run.fit.schedule['reason']}")
    if run.fit.selected_epoch is not None:
        print(f"kept epoch {meta['selected_epoch']} (lowest error on {meta['validation']['split']})")
    if run.companion:
        print(f"companion model: trained on {run.companion['images']} images' cached activations in "
              f"{run.companion['seconds']:.0f} s; the evaluation's ensemble is the mean of the two")
    if len(run.excluded):
        print(f"left out {len(run.excluded)} unreadable image(s); see the integrity report")
    if run.evaluation is not None:
        print_evaluation(run.evaluation, stream=sys.stdout)
    if run.folds is not None:
        s = run.folds.summary
        print(f"{s['folds']} folds: out-of-fold error {s['oof_error']:.1%} on {s['n_oof']} train images; "
              f"{s['n_consensus_hard']} consensus hard example(s) in hard_examples.csv")
    print(f"exported {run.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
