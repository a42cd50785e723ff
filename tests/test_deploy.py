"""deploy/ renders, every object is one the API server of a pinned Kubernetes (and KEDA)
accepts, and the manifests agree with the code: settings, Secret keys, metrics port and probes,
queue names. No cluster is needed: :mod:`manifests` renders with ``kubectl kustomize`` and
validates with ``kubernetes-validate`` and the vendored KEDA schemas (``tests/data/keda``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from manifests import PROBE_PATHS, ManifestError, load, problems, render, validate

from etl4all import metrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUSTOMIZATIONS = ("base", "overlays/example")
WAREHOUSE_VARIABLE = """\
            - name: ETL4ALL_WAREHOUSE_URL
              valueFrom:
                secretKeyRef:
                  name: etl4all-secrets
                  key: ETL4ALL_WAREHOUSE_URL
"""


@pytest.fixture(scope="module")
def secret() -> dict[str, Any]:
    """The example Secret, itself a valid object."""
    example = load(DEPLOY / "secret.example.yaml")
    validate(example)
    return example


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_every_object_is_valid_and_agrees_with_the_code(
    folder: str, secret: dict[str, Any]
) -> None:
    docs = render(DEPLOY / folder)
    for doc in docs:
        validate(doc)
    assert problems(docs, secret) == []
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds.count("Deployment") == 3 and kinds.count("ScaledObject") == 2


def test_the_probes_ask_the_paths_the_metrics_endpoint_answers() -> None:
    assert set(PROBE_PATHS.values()) == set(metrics.PROBES)


def test_the_example_secret_holds_placeholders_only(secret: dict[str, Any]) -> None:
    for key, value in secret["stringData"].items():
        if key.endswith("_URL"):
            assert str(urlsplit(value).hostname).endswith(".example.com"), key
            assert urlsplit(value).password in (None, "PASSWORD"), key
        else:
            assert value.startswith("REPLACE"), key


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("transformer.yaml", "containerPort: 9100", 'containerPort: "9100"', "is not of type"),
        ("extractor.yaml", "    spec:\n      automount", "    spec:\n      automunt", "automunt"),
        ("autoscaling.yaml", "maxReplicaCount: 8", "maxReplicas: 8", "'maxReplicas' was"),
        ("autoscaling.yaml", "queueName: etl4all.points", "queueName: etl4all.point", "watch"),
        ("autoscaling.yaml", "name: etl4all-loader\n  min", "name: loader\n  min", "scales no"),
        ("settings.env", "ETL4ALL_METRICS_PORT=9100", "ETL4ALL_METRICS_PORT=9101", "9101"),
        ("settings.env", "ETL4ALL_QPS=40", "ETL4ALL_QSP=40", "ETL4ALL_QSP is not a setting"),
        ("loader.yaml", "key: ETL4ALL_WAREHOUSE_URL", "key: ETL4ALL_WAREHOUSE", "not in the"),
        ("loader.yaml", "path: /healthz", "path: /metrics", "livenessProbe"),
        ("transformer.yaml", WAREHOUSE_VARIABLE, "", "the warehouse is not given"),
        ("transformer.yaml", "spec:\n  selector:", "spec:\n  replicas: 3\n  selector:", "resets"),
        ("init-db.yaml", "  backoffLimit: 6", "backoffLimit: 6", "MalformedYAMLError"),
    ],
)
def test_a_broken_manifest_is_refused(
    tmp_path: Path, secret: dict[str, Any], file: str, old: str, new: str, message: str
) -> None:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    path = tmp_path / "deploy" / "base" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ManifestError, match=message):
        docs = render(path.parent)
        for doc in docs:
            validate(doc)
        if found := problems(docs, secret):
            raise ManifestError("\n".join(found))
