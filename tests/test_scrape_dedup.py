"""Our pHash must equal imagededup's bit for bit (the leakage audit uses imagededup's)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from curation.scrape.dedup import DedupIndex, phash
from tests.scrape_site import make_picture


def test_phash_is_imagededups_phash(shoes_root):
    from imagededup.methods import PHash

    reference = PHash(verbose=False)
    images = [make_picture(i) for i in range(10)] + [make_picture(3, mode="RGBA").convert("RGB")]
    images += [Image.open(p).convert("RGB") for p in sorted((shoes_root / "train" / "nike").iterdir())[:10]]
    for image in images:
        assert phash(image) == reference.encode_image(image_array=np.asarray(image))


def test_index_offers_mirrors_as_neighbours_only_when_asked():
    picture = make_picture(1)
    for mirror, expected in ((True, ["train/a/1.jpg"]), (False, [])):
        index = DedupIndex(near_threshold=6, mirror=mirror)
        index.add("train/a/1.jpg", ["sha-1"], [phash(picture)])
        flipped = ImageOps.mirror(picture)
        found = index.neighbours(index.candidate_phashes(flipped, flipped))
        assert [n.ref for n in found] == expected
        if found:
            assert found[0].hash_distance == 0 and found[0].hash_mirrored
        assert index.find_exact(["sha-1"]).reason == "duplicate_exact" and index.find_exact(["other"]) is None
