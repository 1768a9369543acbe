"""The ray engine on a real local Ray cluster: a head and one worker node on 127.0.0.1, started
with `ray start` as real processes, in a network namespace that has nothing but loopback (Ray
would otherwise take the machine's outside address; `make test` runs this file inside one:
scripts/loopback_only.sh). The same findings as the local engine, a worker killed mid-stage,
a bad image on a worker, and a cluster that is not there."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.localhost import free_port
from tests.shoes_data import copy_subset

RAY = str(Path(sys.executable).with_name("ray"))


def _only_loopback() -> bool:
    """Whether this process's network namespace has no interface but lo (/proc/net/dev is per namespace)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines] == ["lo"]




def _ray(*args: str) -> None:
    # Ray 2.60 turns token authentication on in a head that finds a token (~/.ray/auth_token, which a
    # first local ray.init() writes), and then nothing without it joins: this loopback-only cluster
    # opts out, as Ray's message says to.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
    done = subprocess.run([RAY, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, f"ray {' '.join(args)} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def ray_cluster():
    """The address of a two-node cluster (head and worker, one CPU each), both on 127.0.0.1."""
    assert _only_loopback(), ("the Ray tests need a network namespace with only loopback: "
                              "run them through `make test` or scripts/loopback_only.sh")
    import ray

    port = free_port()
    address = f"127.0.0.1:{port}"
    _ray("start", "--head", "--num-cpus", "1", "--port", str(port), "--include-dashboard", "false",
         "--disable-usage-stats")
    try:
        _ray("start", "--address", address, "--num-cpus", "1")
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
        nodes = [node for node in ray.nodes() if node["Alive"]]
        assert len(nodes) == 2 and {node["NodeManagerAddress"] for node in nodes} == {"127.0.0.1"}
        yield address
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="module")
def subset(tmp_path_factory, shoes_root) -> Path:
    """36 real shoes images, one train image copied into test (a leak both engines must find) and
    one test image filed under a second class (a conflicting copy for the label issues)."""
    root = copy_subset(shoes_root, tmp_path_factory.mktemp("ray_shoes") / "shoes", {"train": 8, "test": 4})
    train = sorted((root / "train" / "nike").iterdir())[0]
    shutil.copyfile(train, root / "test" / "nike" / "leaked_copy.jpg")
    test = sorted((root / "test" / "adidas").iterdir())[0]
    shutil.copyfile(test, root / "test" / "converse" / "filed_twice.jpg")
    return root


def _findings(root: Path, cache_dir: Path, reports: Path):
    """The scan's table, the audit's pairs and the label issues' ranking, on the active engine."""
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.label_issues.audit import LabelIssueParams, audit_label_issues
    from curation.leakage import audit_leakage

    with ContentCache(cache_dir) as cache:
        scanned = scan_dataset(root, reports_dir=reports, cache=cache)
        leakage = audit_leakage(scanned.table, root, cache=cache)
        labels = audit_label_issues(scanned.table, root, cache=cache,
                                    params=LabelIssueParams(embedding_model="tf_efficientnet_lite0", injection_rounds=0))
    return scanned.table, leakage, labels


def test_the_ray_engine_yields_the_local_engines_findings(ray_cluster, subset, tmp_path):
    from curation.engine import use_engine
    from curation.engine.ray_engine import RayEngine

    local_table, local_leaks, local_labels = _findings(subset, tmp_path / "local_cache", tmp_path / "local")
    # shard_min 10: the 36-image splits are searched in 2 shards, one per node
    with use_engine(RayEngine(ray_cluster, shard_min=10)) as engine:
        ray_table, ray_leaks, ray_labels = _findings(subset, tmp_path / "ray_cache", tmp_path / "ray")
    assert engine.cpus == 2
    assert "shards on ray" in " ".join(ray_leaks.index_kind.values())
    assert all(ray_leaks.computed[k] == local_leaks.computed[k] for k in ("hashes", "embeddings", "keypoints"))

    pd.testing.assert_frame_equal(ray_table, local_table)
    key = ["path_a", "path_b", "kind", "leak"]
    pairs = [leaks.pairs.sort_values(key[:2]).reset_index(drop=True) for leaks in (local_leaks, ray_leaks)]
    pd.testing.assert_frame_equal(pairs[1][key], pairs[0][key])
    np.testing.assert_allclose(pairs[1]["cosine"], pairs[0]["cosine"], atol=1e-4)
    leaked = pairs[0][pairs[0]["leak"]]
    assert {"train/nike", "test/nike"} <= {p.rsplit("/", 1)[0] for p in (*leaked["path_a"], *leaked["path_b"])}

    ranking = ["path", "kind", "is_issue", "given_label", "suggested_label"]
    pd.testing.assert_frame_equal(ray_labels.issues[ranking], local_labels.issues[ranking])
    np.testing.assert_allclose(ray_labels.issues["wrong_probability"], local_labels.issues["wrong_probability"], atol=1e-3)
    assert "conflicting_copies" in set(local_labels.issues["kind"])


def _map_workers_of_the_worker_node():
    import psutil

    raylets = sorted((p for p in psutil.process_iter(["name", "create_time"]) if p.info["name"] == "raylet"),
                     key=lambda p: p.info["create_time"])
    workers = []
    for child in raylets[-1].children(recursive=True):  # the last raylet started is the worker node's
        try:
            if "MapWorker" in " ".join(child.cmdline()):
                workers.append(child.pid)
        except psutil.Error:
            continue
    return workers


def test_a_worker_killed_mid_embedding_loses_no_row(ray_cluster, shoes_root, tmp_path):
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.embeddings import EMBEDDING_KIND, compute_embeddings
    from curation.engine import use_engine
    from curation.engine.ray_engine import RayEngine

    root = copy_subset(shoes_root, tmp_path / "shoes", {"train": 40, "test": 10})  # 150 images
    killed: list[int] = []

    def kill_once_the_stage_is_under_way(cache_dir: Path, total: int) -> None:
        with ContentCache(cache_dir) as watcher:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not killed:
                done = watcher.count(EMBEDDING_KIND)
                workers = _map_workers_of_the_worker_node()
                if 0 < done < total // 2 and workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed.append(workers[0])
                time.sleep(0.05)

    with use_engine(RayEngine(ray_cluster, batch=4)), ContentCache(tmp_path / "cache") as cache:
        table = scan_dataset(root, reports_dir=tmp_path / "reports", cache=cache).table
        killer = threading.Thread(target=kill_once_the_stage_is_under_way, args=(tmp_path / "cache", len(table)))
        killer.start()
        embeddings = compute_embeddings(table, root, cache=cache)
        killer.join()
        assert killed, "no embedding actor of the worker node was seen running"
        assert cache.count(EMBEDDING_KIND) == table["sha256"].nunique()
    assert len(table) == 150 and table["path"].is_unique and table["sample_id"].is_unique
    assert embeddings.valid.all()
    with ContentCache(tmp_path / "local_cache") as cache:
        local = compute_embeddings(table, root, cache=cache)
    np.testing.assert_allclose(embeddings.vectors, local.vectors, atol=1e-4)


def test_a_bad_image_on_a_worker_is_a_report_row(ray_cluster, tmp_path):
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.engine import use_engine
    from curation.engine.ray_engine import RayEngine
    from tests.odd_images import write_odd_dataset

    expected = write_odd_dataset(tmp_path / "odd")
    with ContentCache(tmp_path / "local_cache") as cache:
        local = scan_dataset(tmp_path / "odd", reports_dir=tmp_path / "local", cache=cache).table
    with use_engine(RayEngine(ray_cluster)), ContentCache(tmp_path / "ray_cache") as cache:
        remote = scan_dataset(tmp_path / "odd", reports_dir=tmp_path / "ray", cache=cache).table
    assert sorted(remote["path"]) == sorted(expected)
    pd.testing.assert_frame_equal(remote, local)
    errors = dict(zip(remote["path"], remote["load_error"]))
    assert errors["train/shoe/truncated.jpg"].startswith("truncated or corrupt")
    assert errors["train/shoe/not_an_image.jpg"].startswith("not an image")
    assert errors["train/shoe/good.jpg"] == ""


def test_the_sharded_search_finds_the_unsharded_neighbours(ray_cluster):
    from curation.engine.ray_engine import RayEngine
    from curation.leakage.similarity import build_index, search

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:500] + rng.normal(scale=0.05, size=(500, 32)).astype("float32")
    sharded = RayEngine(ray_cluster, shard_min=1000).build_index(vectors, exact_limit=50_000)
    try:
        assert sharded.kind == "flat, 2 shards on ray"
        sims, labels = search(sharded, queries, 5)
    finally:
        sharded.close()
    expected_sims, expected_labels = search(build_index(vectors, 50_000), queries, 5)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)


def test_a_cluster_that_cannot_be_reached_exits_2_with_a_message(small_shoes, tmp_path):
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{free_port()}"}  # nothing listens there
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "curation.scan", str(small_shoes), "--engine", "ray",
                           "--reports-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot reach the Ray cluster at 127.0.0.1" in done.stderr
    assert time.monotonic() - began < 60
    assert not (tmp_path / small_shoes.name / "samples.parquet").exists()


def test_the_audit_command_on_the_cluster_gates_and_writes_what_the_local_one_does(ray_cluster, subset, tmp_path):
    """`python -m curation.leakage DATA --engine ray` with RAY_ADDRESS set: a separate driver process
    joins the cluster, exits 1 on the planted cross-split copy, and writes the local run's pairs."""
    def audit(engine: str) -> pd.DataFrame:
        out = tmp_path / engine
        env = {**os.environ, "RAY_ADDRESS": ray_cluster}
        done = subprocess.run([sys.executable, "-m", "curation.leakage", str(subset), "--engine", engine,
                               "--fail-on-leak", "--reports-dir", str(out), "--cache-dir", str(out / "cache")],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, done.stderr[-2000:]
        return pd.read_csv(out / subset.name / "leakage" / "pairs.csv")

    key = ["path_a", "path_b", "kind", "leak"]
    local, remote = (audit(engine)[key].sort_values(key[:2]).reset_index(drop=True) for engine in ("local", "ray"))
    pd.testing.assert_frame_equal(remote, local)
    assert local["leak"].any()
