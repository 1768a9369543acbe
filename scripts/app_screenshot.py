"""Upload a photo through the app's page in headless Chromium and save a screenshot of the answer.

    python scripts/app_screenshot.py http://127.0.0.1:8000 photo.jpg out.png [--hide-dataset-images]

Drives the page as a person would (its file input, through the DevTools protocol), so the picture
shows what a user sees. --hide-dataset-images hides the nearest training images' thumbnails (for a
README that must not carry the dataset's pictures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from curation.browser import screenshot_after_upload

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("photo", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--hide-dataset-images", action="store_true")
    args = parser.parse_args()
    screenshot_after_upload(args.url, args.photo, args.out, hide=args.hide_dataset_images)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
