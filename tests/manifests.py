"""Render ``deploy/`` as ``kubectl kustomize`` does and check it without a cluster.

:func:`render` runs ``kubectl kustomize`` (kustomize is built into kubectl). :func:`validate`
checks one object against the Kubernetes API schema of :data:`KUBERNETES` (the
``kubernetes-validate`` package, strict: unknown fields are refused) or, for KEDA's objects,
against the subset of KEDA's CRD schemas vendored in ``tests/data/keda``. :func:`problems`
makes the checks no schema can: every variable a workload sets is a setting, every Secret key
it reads is in the example Secret, probes and scrape annotations reach ``--metrics-port``,
each ScaledObject watches its stage's queue (:mod:`etl4all.broker.queues`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from etl4all.broker.queues import Topology
from etl4all.operations import check
from etl4all.settings import FIELDS, FLAGS_ONLY, SECRET_ENV, Settings

KUBERNETES = "1.32"
"""The Kubernetes version whose API schema the manifests are checked against."""
KEDA_SCHEMAS = Path(__file__).resolve().parent / "data" / "keda"
SETTING_VARIABLES = {
    SECRET_ENV.get(name, f"ETL4ALL_{name.upper()}") for name in FIELDS if name not in FLAGS_ONLY
}
"""Every variable :meth:`Settings.load` reads."""
ROLE_SETTINGS = {
    "source": "ETL4ALL_SOURCE_URL",
    "state": "ETL4ALL_STATE_URL",
    "broker": "ETL4ALL_BROKER_URL",
    "warehouse": "ETL4ALL_WAREHOUSE_URL",
}
"""The variable a worker must be given for each backend role it checks (the lookup is
optional: without one the loader asks the warehouse)."""
STAGE_QUEUES = {"transform": "points", "load": "addresses"}
"""The input queue (a :class:`Topology` attribute) of each scaled stage."""
PROBE_PATHS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
"""The path each probe of a worker asks (:data:`etl4all.metrics.PROBES`)."""


class ManifestError(ValueError):
    """A rendered object that the API server would refuse."""


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects of the kustomization in ``folder``, as ``kubectl kustomize`` builds them.

    Raises:
        ManifestError: kubectl is missing or kustomize refused the folder.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError("kubectl is missing: install it (kustomize is built in) to render")
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ManifestError(f"kubectl kustomize {folder}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def load(path: Path) -> dict[str, Any]:
    """The one object of a YAML file."""
    (doc,) = (doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return dict(doc)


def validate(doc: dict[str, Any]) -> None:
    """Check ``doc`` against its schema.

    Raises:
        ManifestError: it does not match, or no schema is known for its kind.
    """
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
        path = KEDA_SCHEMAS / f"{str(doc['kind']).lower()}.json"
        if not path.exists():
            raise ManifestError(f"{name}: no vendored KEDA schema for {doc['kind']}")
        schema = json.loads(path.read_text())
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        if errors:
            error = min(errors, key=str)
            raise ManifestError(f"{name}: {_where(error.absolute_path)}: {error.message}")
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise ManifestError(f"{name}: {_where(error.path)}: {error.message}") from error
    except kubernetes_validate.SchemaNotFoundError as error:
        raise ManifestError(f"{name}: {error.message}") from error


def _where(path: Any) -> str:
    return ".".join(map(str, path)) or "top level"


def problems(docs: list[dict[str, Any]], secret: dict[str, Any]) -> list[str]:
    """What the API server would accept but the workers or KEDA would not: see the module
    docstring. ``secret`` is the example Secret the workloads read."""
    found: list[str] = []
    config_maps = {
        doc["metadata"]["name"]: doc.get("data", {}) for doc in docs if doc["kind"] == "ConfigMap"
    }
    deployments = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Deployment"}
    for doc in docs:
        for container in _containers(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}"
            environ = _environ(where, container, config_maps, secret, found)
            found += [
                f"{where}: {name} is not a setting's variable"
                for name in sorted(set(environ) - SETTING_VARIABLES)
            ]
            if doc["kind"] == "Deployment":
                found += _worker_problems(where, doc, container, environ)
    found += _scaling_problems(docs, deployments, config_maps, secret)
    return found


def _containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc["kind"] in ("Deployment", "Job"):
        yield from doc["spec"]["template"]["spec"]["containers"]


def _environ(
    where: str,
    container: dict[str, Any],
    config_maps: dict[str, dict[str, str]],
    secret: dict[str, Any],
    found: list[str],
) -> dict[str, str]:
    """The variables ``container`` is given (Secret values from the example Secret)."""
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        if name not in config_maps:
            found.append(f"{where}: no ConfigMap {name}")
        environ.update(config_maps.get(name, {}))
    for variable in container.get("env", []):
        if "valueFrom" not in variable:
            environ[variable["name"]] = variable.get("value", "")
            continue
        ref = variable["valueFrom"]["secretKeyRef"]
        found += _secret_key_problems(where, ref["name"], ref["key"], secret)
        if ref["key"] != variable["name"]:
            found.append(f"{where}: {variable['name']} is read from key {ref['key']}")
        environ[variable["name"]] = secret["stringData"].get(ref["key"], "")
    return environ


def _secret_key_problems(where: str, name: str, key: str, secret: dict[str, Any]) -> list[str]:
    if name != secret["metadata"]["name"]:
        return [f"{where}: reads Secret {name}, not the example's {secret['metadata']['name']}"]
    if key not in secret["stringData"]:
        return [f"{where}: Secret key {key} is not in the example Secret"]
    return []


def _worker_problems(
    where: str, doc: dict[str, Any], container: dict[str, Any], environ: dict[str, str]
) -> list[str]:
    """A ``run-stage`` worker's settings load, it is given what its stage checks, and its
    probes and scrape annotations reach its metrics port."""
    args = container.get("args", [])
    if args[:1] != ["run-stage"]:
        return [f"{where}: runs {args}, not run-stage"]
    settings = Settings.load(environ=environ)
    found = [
        f"{where}: the {role} is not given ({variable})"
        for role in check.stage_roles(args[1], settings.replace(geocoder="google"))
        if (variable := ROLE_SETTINGS.get(role)) and variable not in environ
    ]
    port = settings.metrics_port
    if port is None or settings.metrics_host != "0.0.0.0":
        return [*found, f"{where}: metrics on {settings.metrics_host}:{port}, not 0.0.0.0"]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("metrics") != port:
        found.append(f"{where}: container port metrics is {ports.get('metrics')}, not {port}")
    for probe, path in PROBE_PATHS.items():
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("metrics", port):
            found.append(f"{where}: {probe} is {get or 'missing'}, not {path} on port {port}")
    annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port)}
    if any(annotations.get(key) != value for key, value in scrape.items()):
        found.append(f"{where}: scrape annotations {annotations} miss {scrape}")
    return found


def _scaling_problems(
    docs: list[dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    config_maps: dict[str, dict[str, str]],
    secret: dict[str, Any],
) -> list[str]:
    """Each ScaledObject scales a worker on its stage's queue, through a TriggerAuthentication
    that reads the broker URL; a scaled Deployment leaves its replicas to KEDA."""
    found: list[str] = []
    auths = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "TriggerAuthentication"}
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "TriggerAuthentication":
            for ref in doc["spec"].get("secretTargetRef", []):
                found += _secret_key_problems(where, ref["name"], ref["key"], secret)
                if (ref["parameter"], ref["key"]) != ("host", "ETL4ALL_BROKER_URL"):
                    found.append(f"{where}: {ref['parameter']} from {ref['key']}")
        if doc["kind"] != "ScaledObject":
            continue
        target = doc["spec"]["scaleTargetRef"]
        if target.get("kind", "Deployment") != "Deployment" or target["name"] not in deployments:
            found.append(f"{where}: scales no Deployment of the build")
            continue
        queue = _input_queue(where, deployments[target["name"]], config_maps, secret, found)
        for trigger in doc["spec"]["triggers"]:
            if trigger["type"] != "rabbitmq" or trigger["metadata"].get("queueName") != queue:
                found.append(f"{where}: trigger {trigger['metadata']} does not watch {queue}")
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth not in auths:
                found.append(f"{where}: no TriggerAuthentication {auth}")
    return found


def _input_queue(
    where: str,
    deployment: dict[str, Any],
    config_maps: dict[str, dict[str, str]],
    secret: dict[str, Any],
    found: list[str],
) -> str | None:
    """The queue the scaled ``deployment`` consumes, under its settings' queue prefix."""
    if "replicas" in deployment["spec"]:
        found.append(f"{where}: its Deployment sets replicas, which each apply resets")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    stage = container["args"][1]
    if stage not in STAGE_QUEUES:
        found.append(f"{where}: scales the {stage} stage, which consumes no queue")
        return None
    settings = Settings.load(environ=_environ(where, container, config_maps, secret, []))
    return str(getattr(Topology(prefix=settings.queue_prefix), STAGE_QUEUES[stage]))
