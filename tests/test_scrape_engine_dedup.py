"""The scraper asks the duplicate engine, not a hash distance: a new photo of a look-alike product
is kept (the manifest names the look-alike), while real copies of dataset images, cropped hard or
re-coloured, are refused."""

from __future__ import annotations

import shutil

from PIL import Image, ImageEnhance, ImageOps

from curation.scrape.__main__ import main
from curation.scrape.dedup import phash
from tests.scrape_site import LocalSite, encode, read_manifest

# Pairs of different photos labelled by eye in bench/pairs/shoes_pairs.csv, their pHashes (mirror
# included) within the old rejection threshold: a Chuck Taylor Lugged high beside a Chuck Move high,
# and an Air Max 97 render beside the same render in another colourway (23 keypoint matches).
LOOK_ALIKES = {"train/converse/117.jpg": "train/converse/61.jpg", "train/nike/121.jpg": "train/nike/52.jpg"}
OLD_THRESHOLD = 6


def _bits(a: Image.Image, b: Image.Image) -> int:
    return min(bin(int(phash(a), 16) ^ int(phash(other), 16)).count("1") for other in (b, ImageOps.mirror(b)))


def test_look_alike_is_kept_and_named_while_real_copies_are_refused(shoes_root, tmp_path):
    data = tmp_path / "data"
    for relative in (*LOOK_ALIKES.values(), "train/adidas/75.jpg", "train/nike/118.jpg"):
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shoes_root / relative, data / relative)
    look_alikes = {new: Image.open(shoes_root / new).convert("RGB") for new in LOOK_ALIKES}
    for new, held in LOOK_ALIKES.items():  # the old rule threw these photos away
        assert _bits(look_alikes[new], Image.open(shoes_root / held).convert("RGB")) <= OLD_THRESHOLD

    runner = Image.open(shoes_root / "train/adidas/75.jpg").convert("RGB")
    heavy_crop = runner.crop((40, 70, 200, 230)).resize((240, 240))  # 44% of the area, squashed back
    recoloured = ImageEnhance.Color(ImageEnhance.Brightness(
        Image.open(shoes_root / "train/nike/118.jpg").convert("RGB")).enhance(1.15)).enhance(1.4)
    with LocalSite() as site:
        urls = {new: site.add(f"/img/{i}.jpg", encode(image)) for i, (new, image) in enumerate(look_alikes.items())}
        urls |= {"heavy_crop": site.add("/img/crop.jpg", encode(heavy_crop)),
                "recoloured": site.add("/img/colour.jpg", encode(recoloured))}
        (tmp_path / "converse.txt").write_text("\n".join(urls.values()) + "\n")
        main([str(data), "--classes", "converse", "--count", "8", "--url-file", str(tmp_path / "{label}.txt"),
              "--threads", "1", "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache"),
              "--retries", "0", "--embedding-dedup"])  # a heavy crop is far in pHash: embeddings find it
    rows = {r["url"]: r for r in read_manifest(data / "test_extra" / "manifest.jsonl")}

    for new, held in LOOK_ALIKES.items():
        kept = rows[urls[new]]
        assert kept["decision"] == "kept", kept
        assert (kept["closest"], kept["closest_kind"]) == (held, "similar")
        assert (data / "test_extra" / kept["file"]).is_file()
    for name, source in (("heavy_crop", "train/adidas/75.jpg"), ("recoloured", "train/nike/118.jpg")):
        row = rows[urls[name]]
        assert (row["decision"], row["duplicate_of"]) == ("rejected", source), row
        assert row["reason"] in ("duplicate_near", "duplicate_embedding")  # found by hash or by embedding
        assert "aligned" in row["detail"]  # the evidence that decided it is written down
