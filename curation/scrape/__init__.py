"""Building an extra test split from the web: search engines, site crawls or URL lists, each image
verified, normalised and de-duplicated against the whole dataset, with a provenance manifest.

Public entry point: `scrape(config) -> ScrapeSummary` (see `curation.scrape.run`); the command line
is `python -m curation.scrape`.
"""

from curation.scrape.config import ScrapeConfig

__all__ = ["ScrapeConfig", "scrape"]


def scrape(config: ScrapeConfig, **kwargs):
    from curation.scrape.run import scrape as _scrape

    return _scrape(config, **kwargs)
