""""Wrong, it is X": the photo kept under feedback/<dataset>/<X>/ with where it came from.

Never in the dataset (the folder lies beside reports/, and a folder inside the dataset is refused).
A photo already kept, byte for byte or as a copy by the duplicate engine (the scraper's index and
judge), is not kept twice. The audit reads the folder as the split `feedback`
(curation.layout.list_feedback_samples), so the photos the model got wrong become the next test split.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from curation.app.inputs import Photo
from curation.atomic_files import atomic_path
from curation.errors import CurationError


class FeedbackStore:
    def __init__(self, folder: Path, classes: list[str], dataset_root: Path):
        from curation.leakage.engine import PictureJudge
        from curation.leakage.params import LeakageParams
        from curation.scrape.dedup import DedupIndex

        folder = Path(folder).resolve()
        if folder.is_relative_to(Path(dataset_root).resolve()):
            raise CurationError(f"the feedback folder {folder} lies inside the dataset {dataset_root}: "
                                "the tool never writes into a dataset")
        self.folder, self.classes = folder, classes
        params = LeakageParams()  # the audit's radius and rules, as the app's copy check uses them
        self.index = DedupIndex(near_threshold=params.hash_max_distance)
        self.judge = PictureJudge(params)
        self._lock = threading.Lock()
        for path in sorted(folder.glob("*/*")) if folder.is_dir() else []:
            if path.suffix != ".json":
                self._index_file(path)

    def _index_file(self, path: Path) -> None:
        from curation.image_io import load_rgb
        from curation.image_probe import file_sha256, pixel_hash
        from curation.scrape.dedup import phash
        from PIL import Image

        try:
            with Image.open(path) as raw:
                raw.load()
                raw_hash = pixel_hash(raw)
            image = load_rgb(path)
        except Exception:  # a file someone broke by hand: its name still blocks nothing
            return
        provenance = path.with_suffix(".json")
        uploaded = json.loads(provenance.read_text()).get("sha256_uploaded", "") if provenance.is_file() else ""
        self.index.add(str(path), [file_sha256(path)[0], raw_hash, uploaded], [phash(image)], path)

    def store(self, photo: Photo, label: str, *, predicted: str, filename: str, client: str) -> dict:
        """Keep the photo under its corrected label unless it is already kept; returns what happened."""
        from curation.scrape.dedup import phash

        if label not in self.classes:
            raise ValueError(f"unknown label {label!r}: one of {', '.join(self.classes)}")
        with self._lock:
            known = self.index.find_exact([photo.sha256, photo.pixel_hash])
            if known is None:
                verdict = self.judge.judge(photo.image, self.index.neighbours({"image": phash(photo.image)}))
                known_path = verdict.of if verdict.is_copy else None
            else:
                known_path = known.of
            if known_path:
                return {"stored": False, "duplicate_of": known_path, "label": label}
            target = self.folder / label / f"{photo.sha256[:16]}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as temporary:
                photo.image.save(temporary, "JPEG", quality=95)
            provenance = {"label": label, "predicted": predicted, "uploaded_name": filename, "client": client,
                          "sha256_uploaded": photo.sha256, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "notes": photo.notes}
            target.with_suffix(".json").write_text(json.dumps(provenance, indent=2))
            self._index_file(target)
            self.index.add(str(target), [photo.pixel_hash], [], target)  # the upload's pixels, before turning
            return {"stored": True, "path": str(target), "label": label}
