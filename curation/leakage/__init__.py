"""The leakage audit: is the same picture in two splits?

    from curation.leakage import audit_leakage, write_leakage_report, leak_free_ids
    result = audit_leakage(table, root, cache=cache)          # pairs, copy groups, leak-free view
    write_leakage_report(result, table, out_dir, dataset=name, root=root)
    leak_free_ids(reports_dir / name)                         # sample_ids to drop, or None

Modules: exact (file and pixel hashes), perceptual (imagededup hashes with mirrors), similarity
(FAISS k-NN on embeddings), fuse (one decision per pair, copy groups), leak_free, report.
"""

from curation.leakage.leak_free import leak_free_ids
from curation.leakage.params import LeakageParams
from curation.leakage.pipeline import LeakageResult, audit_leakage


def write_leakage_report(*args, **kwargs):
    from curation.leakage.report import write_leakage_report as write

    return write(*args, **kwargs)


__all__ = ["LeakageParams", "LeakageResult", "audit_leakage", "leak_free_ids", "write_leakage_report"]
