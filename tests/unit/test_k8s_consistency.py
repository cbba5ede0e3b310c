"""The rendered manifests agree with the code: every container runs a real `pinpipe` command
(the typer app's click commands parse its arguments), every PINPIPE_* variable is a setting of
the service that reads it and loads, ports and probes are the ones the settings make the service
serve, the topics are the code's, and the security, disruption and network rules hold for every
workload (NetworkPolicies evaluated flow by flow)."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer
import typer.core
import typer.main
import yaml
from pydantic import ValidationError

from batch.config import BatchSettings
from cli.main import app as cli_app
from services.aggregator.config import AggregatorSettings
from services.aggregator.tables import POSTS_TABLE
from services.cleaner.config import CleanerSettings
from services.emulator.config import EmulatorSettings
from services.ingest_api.config import IngestSettings
from services.ingest_api.stream_registry import REGISTRY_TOPIC
from services.s3_sink.config import S3SinkSettings
from shared.settings import PinpipeSettings
from shared.topics import DLQ_TOPIC, RECORD_TYPES, clean_topics, raw_batch_topic, raw_stream_topic
from tests.servers import REPO_ROOT
from tests.unit.test_k8s_render import (
    K8S,
    NAMESPACE,
    OVERLAYS,
    Doc,
    containers,
    named,
    of_kind,
    overlay,
    pod_template,
)

PINPIPE_IMAGES = ("pinpipe", "pinpipe-spark")
# the settings class each command reads, and the host/port fields of what it serves
COMMAND_SETTINGS: dict[tuple[str, ...], type[PinpipeSettings]] = {
    ("ingest-api",): IngestSettings,
    ("cleaner",): CleanerSettings,
    ("aggregator",): AggregatorSettings,
    ("s3-sink",): S3SinkSettings,
    ("emulator", "run"): EmulatorSettings,
    ("emulator", "seed-db"): EmulatorSettings,
    ("query",): BatchSettings,
    ("backfill",): BatchSettings,
    ("lake", "upkeep"): BatchSettings,
}
SERVES: dict[tuple[str, ...], tuple[str, str]] = {
    ("ingest-api",): ("ingest_host", "ingest_port"),
    ("cleaner",): ("cleaner_host", "cleaner_port"),
    ("aggregator",): ("aggregator_host", "aggregator_port"),
    ("s3-sink",): ("s3_sink_host", "s3_sink_port"),
    ("emulator", "run"): ("emulator_host", "emulator_port"),
}
SERVICES = ("ingest-api", "cleaner", "aggregator", "s3-sink")  # the base's, by name
POD_IP = "10.1.2.3"


def app_name(labels: dict[str, str]) -> str:
    return labels.get("app.kubernetes.io/name", "")


def image_name(image: str) -> str:
    """``ghcr.io/pinpipe/pinpipe-spark:0.1.0`` → ``pinpipe-spark``."""
    return image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]


def pinpipe_containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc, Doc]]:
    """(workload, pod spec, container) for every container of a pinpipe image."""
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        for container in containers(doc):
            if image_name(container["image"]) in PINPIPE_IMAGES:
                yield doc, template["spec"], container


# ---- the CLI -------------------------------------------------------------------------------


def cli_command(args: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The command path of ``pinpipe <args>`` (the typer app's click commands) and the parameters
    its parser makes of the rest; a usage error (NoSuchOption, BadParameter, …) when the
    arguments are not the command's."""
    command = typer.main.get_command(cli_app)
    path: list[str] = []
    rest = list(args)
    while isinstance(command, typer.core.TyperGroup):
        assert rest, f"pinpipe {' '.join(args)}: no subcommand"
        sub = command.commands.get(rest[0])
        assert sub is not None, f"pinpipe {' '.join(args)}: no command {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    params: dict[str, Any] = command.make_context(" ".join(path), rest).params
    return tuple(path), params


def python_snippet_settings(code: str) -> type[PinpipeSettings]:
    """A `python -c` snippet compiles, its imports exist, and it reads one settings class."""
    compile(code, "<python -c>", "exec")
    imports = re.findall(r"^\s*from ([\w.]+) import ([\w, ]+)", code, re.M)
    assert imports, "the snippet imports nothing of pinpipe"
    found: list[type[PinpipeSettings]] = []
    for module_name, names in imports:
        assert importlib.util.find_spec(module_name) is not None, module_name
        module = importlib.import_module(module_name)
        for name in (n.strip() for n in names.split(",")):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, PinpipeSettings):
                found.append(value)
    assert len(found) == 1, f"settings read by the snippet: {found}"
    return found[0]


@dataclass
class Run:
    """What a pinpipe container runs: its command path, settings class and environment."""

    path: tuple[str, ...]
    params: dict[str, Any]
    settings_class: type[PinpipeSettings]
    env: dict[str, str] = field(default_factory=dict)


def describe(docs: list[Doc], container: Doc) -> Run:
    command = container.get("command")
    args = [str(a) for a in container.get("args", [])]
    if command is None:
        path, params = cli_command(args)
        assert path in COMMAND_SETTINGS, f"no settings known for pinpipe {' '.join(path)}"
        run = Run(path, params, COMMAND_SETTINGS[path])
    else:
        assert command == ["python", "-c"] and len(args) == 1, command
        run = Run(("python",), {}, python_snippet_settings(args[0]))
    run.env = environment(docs, container)
    return run


def environment(docs: list[Doc], container: Doc) -> dict[str, str]:
    """The container's environment as the kubelet makes it: envFrom, then env ($(VAR) expanded,
    fieldRef status.podIP as POD_IP; a Secret's value when the render holds the Secret, else a
    placeholder, or nothing for an optional key)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) <= {"configMapRef", "secretRef"} and len(source) == 1, source
        if "configMapRef" in source:
            env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
            continue
        ref = source["secretRef"]
        secrets = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"]]
        assert secrets or ref.get("optional"), f"no Secret {ref['name']} for envFrom"
        for secret in secrets:
            env.update({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(var["value"]))
        elif "fieldRef" in var["valueFrom"]:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", var
            env[name] = POD_IP
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            generated = re.compile(rf"{re.escape(ref['name'])}(-[a-z0-9]{{10}})?")
            secrets = [
                s for s in of_kind(docs, "Secret") if generated.fullmatch(s["metadata"]["name"])
            ]
            data = secrets[0].get("data", {}) if secrets else {}
            if ref["key"] in data:
                env[name] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                env[name] = "from-a-secret"
    return env


def load_settings(run: Run, monkeypatch: pytest.MonkeyPatch) -> PinpipeSettings:
    """The container's settings, read from its environment as the service reads them."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("PINPIPE_")]:
            patch.delenv(name)
        for name, value in run.env.items():
            patch.setenv(name, value)
        return run.settings_class()


@pytest.mark.parametrize("name", OVERLAYS)
def test_commands_are_the_clis(name: str) -> None:
    """Every pinpipe container runs a command of the CLI with arguments it accepts (or a
    `python -c` snippet over pinpipe's modules); every service of the flow runs."""
    docs = overlay(name)
    paths = set()
    for _, _, container in pinpipe_containers(docs):
        run = describe(docs, container)
        paths.add(run.path)
    assert {("ingest-api",), ("cleaner",), ("aggregator",), ("s3-sink",), ("query",)} <= paths
    if name in IN_CLUSTER:
        assert {("emulator", "run"), ("emulator", "seed-db"), ("python",)} <= paths
    else:
        assert ("backfill",) in paths


def test_the_cli_check_can_fail() -> None:
    with pytest.raises(Exception, match="No such option"):
        cli_command(["query", "all", "--no-such-option"])
    with pytest.raises(Exception, match="Got unexpected extra argument"):
        cli_command(["cleaner", "now"])
    with pytest.raises(AssertionError):
        cli_command(["emulator", "replay"])
    with pytest.raises(SyntaxError):
        python_snippet_settings("from batch.config import BatchSettings\nif")


@pytest.mark.parametrize("name", OVERLAYS)
def test_pinpipe_variables_are_settings_that_load(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every PINPIPE_* variable a container gets is a field of the settings class of the command
    it runs (the shared ConfigMap: of the base class), and the settings load from them."""
    docs = overlay(name)
    shared = {f"PINPIPE_{f.upper()}" for f in PinpipeSettings.model_fields}
    config = named(docs, "ConfigMap", "pinpipe-config")["data"]
    assert set(config) <= shared, set(config) - shared
    for workload, _, container in pinpipe_containers(docs):
        run = describe(docs, container)
        fields = {f"PINPIPE_{f.upper()}" for f in run.settings_class.model_fields}
        own = {var["name"] for var in container.get("env", [])}
        unknown = {v for v in own if v.startswith("PINPIPE_")} - fields
        where = f"{workload['metadata']['name']}/{container['name']}"
        assert not unknown, f"{where}: not settings of {run.settings_class.__name__}: {unknown}"
        settings = load_settings(run, monkeypatch)
        assert settings.kafka_bootstrap_servers == config["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"]
        # secrets (SecretStr settings) come from Secrets; a literal is only a password-less
        # SQLite path
        for var in container.get("env", []):
            setting = run.settings_class.model_fields.get(var["name"][8:].lower())
            if setting is None or "SecretStr" not in str(setting.annotation):
                continue
            literal = var.get("value")
            assert literal is None or literal.startswith("sqlite:"), f"{where}: {var['name']}"


def _port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert len(numbers) == 1, f"{container['name']}: no port named {port!r}"
    return int(numbers[0])


def _mounts(container: Doc) -> dict[str, Doc]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def _on_volume(container: Doc, path: str, writable: bool = True) -> str | None:
    """The volume a path lies on (the deepest mount holding it), if any."""
    holders = [
        (len(mount), m)
        for mount, m in _mounts(container).items()
        if PurePosixPath(path).is_relative_to(mount) and not (writable and m.get("readOnly"))
    ]
    return max(holders, key=lambda h: h[0])[1]["name"] if holders else None


@pytest.mark.parametrize("name", OVERLAYS)
def test_ports_probes_and_scrape_annotations(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A serving container listens on all interfaces at the port its settings give; exposes
    exactly that port (and the aggregator its internal port, which no Service exposes); its
    probes (liveness /healthz, readiness /readyz), Prometheus annotations and Services point at
    it. Batch containers expose nothing."""
    docs = overlay(name)
    services = of_kind(docs, "Service")
    for workload, pod, container in pinpipe_containers(docs):
        run = describe(docs, container)
        where = f"{workload['metadata']['name']}/{container['name']}"
        template = pod_template(workload)
        assert template is not None
        if run.path not in SERVES or container in pod.get("initContainers", []):
            assert not container.get("ports"), f"{where} runs {run.path}, which serves nothing"
            assert workload["kind"] in ("Job", "CronJob") or container in pod.get(
                "initContainers", []
            ), where
            continue
        assert workload["kind"] == "Deployment", where
        settings = load_settings(run, monkeypatch)
        host_field, port_field = SERVES[run.path]
        assert getattr(settings, host_field) == "0.0.0.0", f"{where}: binds {host_field}"
        port = getattr(settings, port_field)
        ports = [port]
        if isinstance(settings, AggregatorSettings):
            assert settings.internal_port != port, where
            ports.append(settings.internal_port)
        assert [p["containerPort"] for p in container["ports"]] == ports, where
        probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
        for probe, path in probes.items():
            get = container[probe]["httpGet"]
            assert (get["path"], _port_number(container, get["port"])) == (path, port), where
        if "startupProbe" in container:
            assert _port_number(container, container["startupProbe"]["httpGet"]["port"]) == port
        annotations = template["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", where
        assert annotations.get("prometheus.io/port") == str(port), where
        assert annotations.get("prometheus.io/path") == "/metrics", where
        labels = template["metadata"]["labels"]
        selecting = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
        assert selecting, f"{where}: no Service"
        for service in selecting:
            for service_port in service["spec"]["ports"]:
                assert _port_number(container, service_port["targetPort"]) == port, where


@pytest.mark.parametrize("name", OVERLAYS)
def test_state_is_on_volumes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a read-only root filesystem, whatever a pinpipe container writes is on a volume:
    /tmp and HOME, the aggregator's Faust data, the emulator's SQLite database (shared by the
    seed-db init container and the run container), a `--out` folder; and the aggregator
    advertises its own pod's address on its internal port."""
    docs = overlay(name)
    for workload, pod, container in pinpipe_containers(docs):
        run = describe(docs, container)
        settings = load_settings(run, monkeypatch)
        where = f"{workload['metadata']['name']}/{container['name']}"
        paths = ["/tmp", run.env.get("HOME", "/tmp")]
        if isinstance(settings, AggregatorSettings):
            paths.append(str(settings.aggregator_datadir))
            assert settings.internal_url == f"http://{POD_IP}:{settings.internal_port}"
        if isinstance(settings, EmulatorSettings):
            url = settings.source_db_url.get_secret_value()
            assert url.startswith("sqlite:////"), url
            paths.append(url.removeprefix("sqlite:///"))
        if settings.lake_url.startswith("file://"):
            paths.append(settings.lake_url.removeprefix("file://"))
        if run.params.get("out") is not None:
            out = str(run.params["out"])
            if "://" not in out:
                paths.append(out)
        for path in paths:
            assert _on_volume(container, path), f"{where}: {path} is not on a writable volume"
        if isinstance(settings, EmulatorSettings):
            database = _on_volume(container, url.removeprefix("sqlite:///"))
            users = [
                c
                for c in [*pod.get("initContainers", []), *pod["containers"]]
                if _on_volume(c, url.removeprefix("sqlite:///")) == database
            ]
            assert len(users) == 2, "seed-db and run must share the database's volume"


def test_the_emulator_posts_to_the_ingest_api(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = overlay("dev")
    emulator = named(docs, "Deployment", "emulator")
    container = emulator["spec"]["template"]["spec"]["containers"][0]
    settings = load_settings(describe(docs, container), monkeypatch)
    assert isinstance(settings, EmulatorSettings)
    url = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", settings.emulator_api_url)
    assert url, settings.emulator_api_url
    service = named(docs, "Service", url[1])
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "ingest-api"
    assert [p["port"] for p in service["spec"]["ports"]] == [int(url[2])]


# ---- security ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OVERLAYS)
def test_ingest_api_keys_are_required_and_roles_distinct(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base fails closed: the ingest API requires producers' keys from the Secret
    pinpipe-ingest (no Secret, no pod; no keys, no start). The dev and local overlays generate
    it, with an admin key other than the producers' and the emulator's key among the producers'."""
    docs = overlay(name)
    (container,) = named(docs, "Deployment", "ingest-api")["spec"]["template"]["spec"]["containers"]
    refs = {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for var in container["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    assert re.fullmatch(r"pinpipe-ingest(-[a-z0-9]{10})?", refs["PINPIPE_INGEST_API_KEYS"]["name"])
    assert not refs["PINPIPE_INGEST_API_KEYS"].get("optional")
    settings = load_settings(describe(docs, container), monkeypatch)
    assert isinstance(settings, IngestSettings)
    assert settings.ingest_require_api_keys
    with pytest.raises(ValidationError, match="PINPIPE_INGEST_API_KEYS is empty"):
        IngestSettings.model_validate({**settings.model_dump(), "ingest_api_keys": ""})
    if name == "prod":  # the Secret is the operator's
        return
    assert settings.api_keys() and settings.admin_api_keys()
    (emulator,) = named(docs, "Deployment", "emulator")["spec"]["template"]["spec"]["containers"]
    emulator_settings = load_settings(describe(docs, emulator), monkeypatch)
    assert isinstance(emulator_settings, EmulatorSettings)
    assert emulator_settings.emulator_api_key.get_secret_value() in settings.api_keys()


@pytest.mark.parametrize("name", OVERLAYS)
def test_security_contexts_and_resources(name: str) -> None:
    """Every container of every workload: non-root (uid 10001), read-only root filesystem, no
    privilege escalation, every capability dropped, the runtime's seccomp profile; requests and
    limits of CPU and memory; no host namespaces."""
    problems = []
    for doc in overlay(name):
        template = pod_template(doc)
        if template is None:
            continue
        pod = template["spec"]
        pod_context = pod.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                problems.append(f"{doc['metadata']['name']}: {key}")
        for container in containers(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            context = {**pod_context, **container.get("securityContext", {})}
            expected = {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
            }
            for key, value in expected.items():
                if context.get(key) != value:
                    problems.append(f"{where}: {key} is {context.get(key)!r}")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            capabilities = container.get("securityContext", {}).get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
                problems.append(f"{where}: capabilities {capabilities}")
            if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp {context.get('seccompProfile')}")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if set(resources.get(kind, {})) != {"cpu", "memory"}:
                    problems.append(f"{where}: {kind} {resources.get(kind)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", OVERLAYS)
def test_service_accounts(name: str) -> None:
    """Each workload runs as its own ServiceAccount, which mounts no token by default; a pod
    mounts one only when its account is bound to a Role (Prometheus' pod discovery)."""
    docs = overlay(name)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(docs, "ServiceAccount")}
    bound = {
        subject["name"]
        for binding in of_kind(docs, "RoleBinding")
        for subject in binding["subjects"]
        if subject["kind"] == "ServiceAccount"
    }
    for sa in accounts.values():
        assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]
    used = set()
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        pod = template["spec"]
        account = pod.get("serviceAccountName")
        assert account in accounts, f"{doc['metadata']['name']}: account {account!r}"
        assert account not in used, f"{account} shared by two workloads"
        used.add(account)
        assert pod.get("automountServiceAccountToken") is (account in bound), account
    assert set(accounts) == used, "a ServiceAccount no workload uses"


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects these labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_service_has_a_pdb_and_a_network_policy(name: str) -> None:
    """Every Deployment and StatefulSet: a PodDisruptionBudget that lets a node drain (one pod
    at a time), and a NetworkPolicy of its own (beyond the namespace-wide ones)."""
    docs = overlay(name)
    budgets = of_kind(docs, "PodDisruptionBudget")
    policies = [p for p in of_kind(docs, "NetworkPolicy") if p["spec"]["podSelector"] != {}]
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selects(doc["spec"]["selector"], labels)
        where = doc["metadata"]["name"]
        mine = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(mine) == 1, f"{where}: {len(mine)} PodDisruptionBudgets"
        assert mine[0]["spec"].get("maxUnavailable") == 1, where
        assert any(selects(p["spec"]["podSelector"], labels) for p in policies), where


# ---- network policies, flow by flow --------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: tuple[tuple[str, str], ...]

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


OUTSIDE = Pod("", ())  # users, the Kubernetes API, external Kafka and S3: any address
KUBE_DNS = Pod("kube-system", (("k8s-app", "kube-dns"),))
CLUSTER = "pinpipe"  # the Strimzi Kafka cluster's name
# The labels Strimzi gives the broker pods of the cluster (its bootstrap Service selects them).
KAFKA_POD = Pod(
    NAMESPACE,
    (
        ("strimzi.io/broker-role", "true"),
        ("strimzi.io/cluster", CLUSTER),
        ("strimzi.io/controller-role", "true"),
        ("strimzi.io/kind", "Kafka"),
        ("strimzi.io/name", f"{CLUSTER}-kafka"),
    ),
)


def strimzi_listener_policy(kafka: Doc) -> Doc:
    """The NetworkPolicy Strimzi writes for a Kafka's listeners: each listener's port, from
    its networkPolicyPeers (from anywhere without them)."""
    ingress = []
    for listener in kafka["spec"]["kafka"]["listeners"]:
        rule: Doc = {"ports": [{"port": listener["port"], "protocol": "TCP"}]}
        if listener.get("networkPolicyPeers"):
            rule["from"] = listener["networkPolicyPeers"]
        ingress.append(rule)
    return {
        "metadata": {"name": f"{kafka['metadata']['name']}-network-policy-kafka"},
        "spec": {
            "podSelector": {"matchLabels": {"strimzi.io/name": f"{CLUSTER}-kafka"}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


class Network:
    """NetworkPolicy semantics over the overlay's pods: a pod selected by a policy of a
    direction is isolated in it and takes only what some such policy's rule allows."""

    def __init__(self, docs: list[Doc]) -> None:
        self.policies = of_kind(docs, "NetworkPolicy")
        self.pods: dict[str, Pod] = {}
        for doc in docs:
            template = pod_template(doc)
            if template is not None:
                labels = template["metadata"]["labels"]
                self.pods[app_name(labels)] = Pod(NAMESPACE, tuple(sorted(labels.items())))
        for kafka in of_kind(docs, "Kafka"):
            self.pods["kafka"] = KAFKA_POD
            self.policies.append(strimzi_listener_policy(kafka))

    def pod(self, name: str) -> Pod:
        return OUTSIDE if name == "outside" else KUBE_DNS if name == "kube-dns" else self.pods[name]

    def allows(self, source: str, target: str, port: int, protocol: str = "TCP") -> bool:
        src, dst = self.pod(source), self.pod(target)
        egress = src is OUTSIDE or self._allows(src, dst, port, protocol, "Egress")
        ingress = dst.namespace != NAMESPACE or self._allows(dst, src, port, protocol, "Ingress")
        return egress and ingress

    def _allows(self, pod: Pod, peer: Pod, port: int, protocol: str, direction: str) -> bool:
        isolating = [
            p
            for p in self.policies
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"]["podSelector"], pod.label_map)
        ]
        if not isolating:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        return any(
            self._port(rule.get("ports"), port, protocol) and self._peer(rule.get(peers_key), peer)
            for policy in isolating
            for rule in policy["spec"].get(key, [])
        )

    @staticmethod
    def _port(ports: list[Doc] | None, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for p in ports:
            number = p.get("port")
            assert number is None or isinstance(number, int), "named ports: not modelled"
            in_range = number is None or number <= port <= p.get("endPort", number)
            if p.get("protocol", "TCP") == protocol and in_range:
                return True
        return False

    @staticmethod
    def _peer(peers: list[Doc] | None, peer: Pod) -> bool:
        if not peers:
            return True
        for rule in peers:
            if "ipBlock" in rule:
                if peer is OUTSIDE:
                    return True
                continue
            if peer is OUTSIDE:
                continue
            namespaces = rule.get("namespaceSelector")
            namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
            if namespaces is None and peer.namespace != NAMESPACE:
                continue
            if namespaces is not None and not selects(namespaces, namespace_labels):
                continue
            if selects(rule.get("podSelector", {}), peer.label_map):
                return True
        return False


# (source, target, port[, protocol]); "kafka"/"s3" are the overlay's Kafka and S3
FLOWS_ALLOWED = [
    ("outside", "ingest-api", 8000),
    ("outside", "aggregator", 8001),
    ("outside", "grafana", 3000),
    ("ingest-api", "kafka", 0),
    ("cleaner", "kafka", 0),
    ("aggregator", "kafka", 0),
    ("s3-sink", "kafka", 0),
    ("s3-sink", "s3", 0),
    ("batch-report", "s3", 0),
    ("lake-upkeep", "s3", 0),
    ("aggregator", "aggregator", 8011),  # gathering partial answers, on the internal port
    ("prometheus", "ingest-api", 8000),
    ("prometheus", "aggregator", 8001),
    ("prometheus", "cleaner", 8002),
    ("prometheus", "s3-sink", 8003),
    ("prometheus", "outside", 443),  # pod discovery through the Kubernetes API
    ("grafana", "prometheus", 9090),
]
FLOWS_DENIED = [
    ("outside", "cleaner", 8002),
    ("outside", "s3-sink", 8003),
    ("outside", "prometheus", 9090),
    ("ingest-api", "cleaner", 8002),
    ("ingest-api", "s3", 0),
    ("cleaner", "s3", 0),
    ("aggregator", "s3", 0),
    ("cleaner", "aggregator", 8001),
    # the aggregator's internal port is the other aggregators' alone
    ("outside", "aggregator", 8011),
    ("prometheus", "aggregator", 8011),
    ("ingest-api", "aggregator", 8011),
    ("cleaner", "aggregator", 8011),
    ("grafana", "aggregator", 8011),
    ("cleaner", "outside", 443),
    ("ingest-api", "outside", 80),
    ("batch-report", "kafka", 0),
    ("lake-upkeep", "kafka", 0),
    ("grafana", "kafka", 0),
    ("grafana", "ingest-api", 8000),
    ("prometheus", "kafka", 0),
]
DEV_ONLY_ALLOWED = [
    ("emulator", "ingest-api", 8000),
    ("prometheus", "emulator", 8004),
    ("s3-bucket", "s3", 0),
]
DEV_ONLY_DENIED = [
    ("emulator", "kafka", 0),
    ("emulator", "s3", 0),
    ("emulator", "cleaner", 8002),
    ("outside", "s3", 0),
    ("outside", "kafka", 0),
    ("s3-sink", "outside", 443),  # the lake is the in-cluster S3 here
    ("cleaner", "outside", 9092),  # and Kafka the in-cluster broker
]
PROD_ONLY_ALLOWED = [("spark-backfill", "s3", 0)]
PROD_ONLY_DENIED = [("spark-backfill", "kafka", 0)]


IN_CLUSTER = ("dev", "local")  # the overlays with Kafka and S3 in the cluster


def _resolve(name: str, endpoint: str, port: int) -> tuple[str, int]:
    if endpoint == "kafka":
        return ("kafka" if name in IN_CLUSTER else "outside"), port or 9092
    if endpoint == "s3":
        return ("seaweedfs", port or 8333) if name in IN_CLUSTER else ("outside", port or 443)
    return endpoint, port


def flows(name: str) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """The flows that must connect and those that must not, in the overlay ``name`` (those of
    Grafana only where it runs)."""
    in_cluster = name in IN_CLUSTER
    allowed = FLOWS_ALLOWED + (DEV_ONLY_ALLOWED if in_cluster else PROD_ONLY_ALLOWED)
    denied = FLOWS_DENIED + (DEV_ONLY_DENIED if in_cluster else PROD_ONLY_DENIED)
    if not any(d["metadata"]["name"] == "grafana" for d in of_kind(overlay(name), "Deployment")):
        allowed = [f for f in allowed if "grafana" not in f[:2]]
        denied = [f for f in denied if "grafana" not in f[:2]]
    return allowed, denied


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policies_allow_the_flow_and_nothing_else(name: str) -> None:
    network = Network(overlay(name))
    allowed, denied = flows(name)
    wrong = []
    for source, target, port in allowed:
        target, port = _resolve(name, target, port)
        if not network.allows(source, target, port):
            wrong.append(f"denied: {source} → {target}:{port}")
    for source, target, port in denied:
        target, port = _resolve(name, target, port)
        if network.allows(source, target, port):
            wrong.append(f"allowed: {source} → {target}:{port}")
    for pod in network.pods:
        if not network.allows(pod, "kube-dns", 53, "UDP"):
            wrong.append(f"no DNS for {pod}")
        if network.allows(pod, "kube-dns", 80):
            wrong.append(f"{pod} reaches kube-system beyond DNS")
    assert not wrong, "\n".join(wrong)


def test_default_deny_selects_every_pod() -> None:
    for name in OVERLAYS:
        deny = named(overlay(name), "NetworkPolicy", "default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_the_flow_check_can_fail() -> None:
    """Without the default deny and its own policy, the cleaner takes any connection: the
    evaluator sees it."""
    dropped = ("default-deny", "cleaner")
    docs = [
        d
        for d in overlay("dev")
        if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] in dropped)
    ]
    assert Network(docs).allows("outside", "cleaner", 8002)
    assert not Network(overlay("dev")).allows("outside", "cleaner", 8002)


# ---- Kafka, S3, monitoring -----------------------------------------------------------------


def test_kafka_topics_are_the_codes() -> None:
    """One KafkaTopic per topic an operator should own, as the code names and sizes them: the
    raw batch topics of PINPIPE_TOPIC_PREFIX, the clean topics, the DLQ, the ingest API's stream
    registry and the aggregator's changelog (compacted, as many partitions as the clean topics
    it is co-partitioned with). The stream spellings are the streams API's to create and
    delete."""
    docs = overlay("dev")
    config = named(docs, "ConfigMap", "pinpipe-config")["data"]
    prefix, partitions = config["PINPIPE_TOPIC_PREFIX"], int(config["PINPIPE_TOPIC_PARTITIONS"])
    topics = {
        t["spec"].get("topicName", t["metadata"]["name"]): t for t in of_kind(docs, "KafkaTopic")
    }
    changelog = f"{AggregatorSettings().aggregator_app_id}-{POSTS_TABLE}-changelog"
    raw = [raw_batch_topic(prefix, t) for t in RECORD_TYPES]
    expected = {*raw, *clean_topics(), DLQ_TOPIC, REGISTRY_TOPIC, changelog}
    assert set(topics) == expected
    assert not {raw_stream_topic(prefix, t) for t in RECORD_TYPES} & set(topics)
    for name, topic in topics.items():
        spec = topic["spec"]
        compacted = spec.get("config", {}).get("cleanup.policy") == "compact"
        assert compacted == (name in (REGISTRY_TOPIC, changelog)), name
        if name == REGISTRY_TOPIC:
            assert spec["partitions"] == 1
        else:
            assert spec["partitions"] == partitions, name
            assert int(spec["config"]["retention.ms"] if not compacted else 1) > 0


def test_kafka_clients_reach_the_strimzi_bootstrap() -> None:
    docs = overlay("dev")
    (kafka,) = of_kind(docs, "Kafka")
    config = named(docs, "ConfigMap", "pinpipe-config")["data"]
    (plain,) = [lsn for lsn in kafka["spec"]["kafka"]["listeners"] if not lsn["tls"]]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{plain['port']}"
    assert config["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    assert plain["type"] == "internal"


def _kafka_secret(name: str, data: dict[str, str]) -> Doc:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


@pytest.mark.parametrize("name", OVERLAYS)
def test_kafka_security_comes_from_optional_secrets(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every service of the flow takes its Kafka security settings from the Secret
    ``pinpipe-kafka`` (envFrom) and the files they name (the CA, a password file) from the
    Secret ``pinpipe-kafka-files`` mounted read-only at /etc/pinpipe/kafka; both optional, so
    without them a service talks PLAINTEXT, and with them it loads SASL_SSL settings."""
    docs = overlay(name)
    in_pod = {
        "PINPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "PINPIPE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "PINPIPE_KAFKA_SASL_USERNAME": "pinpipe",
        "PINPIPE_KAFKA_SASL_PASSWORD_FILE": "/etc/pinpipe/kafka/password",
        "PINPIPE_KAFKA_SSL_CAFILE": "/etc/pinpipe/kafka/ca.crt",
    }
    password = tmp_path / "password"  # the mounted file, here
    password.write_text("from-the-file\n")
    given = [
        _kafka_secret(
            "pinpipe-kafka", {**in_pod, "PINPIPE_KAFKA_SASL_PASSWORD_FILE": str(password)}
        )
    ]
    seen = set()
    for workload, spec, container in pinpipe_containers(docs):
        if app_name(workload["metadata"].get("labels", {})) not in SERVICES:
            continue
        seen.add(workload["metadata"]["name"])
        where = f"{workload['metadata']['name']}/{container['name']}"
        refs = [s["secretRef"] for s in container.get("envFrom", []) if "secretRef" in s]
        assert {"name": "pinpipe-kafka", "optional": True} in refs, where
        volume = _on_volume(container, in_pod["PINPIPE_KAFKA_SSL_CAFILE"], writable=False)
        assert volume == _on_volume(
            container, in_pod["PINPIPE_KAFKA_SASL_PASSWORD_FILE"], writable=False
        )
        (files,) = [v for v in spec["volumes"] if v["name"] == volume]
        assert files["secret"]["secretName"] == "pinpipe-kafka-files", where
        assert files["secret"]["optional"] is True, where
        assert _mounts(container)["/etc/pinpipe/kafka"].get("readOnly") is True, where
        run = describe(docs, container)
        assert load_settings(run, monkeypatch).kafka_security_protocol == "PLAINTEXT", where
        settings = load_settings(describe(docs + given, container), monkeypatch)
        assert settings.kafka_security_protocol == "SASL_SSL", where
        assert settings.kafka_sasl_password is not None, where
        assert settings.kafka_sasl_password.get_secret_value() == "from-the-file", where
        assert str(settings.kafka_ssl_cafile) == "/etc/pinpipe/kafka/ca.crt", where
    assert seen == set(SERVICES)


def test_s3_credentials_endpoint_and_bucket_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev S3: the server's identity (s3.json) is the clients' key pair, the endpoint is the
    SeaweedFS Service on the gateway's port, and the bucket Job creates the lake's bucket."""
    docs = overlay("dev")
    secret = named(docs, "Secret", "pinpipe-s3")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    identities = json.loads(data["s3.json"])["identities"]
    pairs = {(c["accessKey"], c["secretKey"]) for i in identities for c in i["credentials"]}
    assert pairs == {(data["access-key-id"], data["secret-access-key"])}
    endpoint = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", data["endpoint-url"])
    assert endpoint, data["endpoint-url"]
    service = named(docs, "Service", endpoint[1])
    statefulset = named(docs, "StatefulSet", "seaweedfs")
    server = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert selects(
        {"matchLabels": service["spec"]["selector"]},
        statefulset["spec"]["template"]["metadata"]["labels"],
    )
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == int(endpoint[2])
    gateway = _port_number(server, service_port["targetPort"])
    assert f"-s3.port={gateway}" in server["args"]
    assert "-s3.config=/etc/seaweedfs/s3.json" in server["args"]
    assert _on_volume(server, "/etc/seaweedfs/s3.json", writable=False) == "config"
    referenced = {
        (var["valueFrom"]["secretKeyRef"]["name"], var["valueFrom"]["secretKeyRef"]["key"])
        for doc in docs
        for container in containers(doc)
        for var in container.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    for name, key in referenced:
        if name == secret["metadata"]["name"]:
            assert key in data, key
    job = named(docs, "Job", "s3-bucket")
    run = describe(docs, job["spec"]["template"]["spec"]["containers"][0])
    settings = load_settings(run, monkeypatch)
    assert settings.lake_url.startswith("s3://")
    assert settings.s3_endpoint_url == data["endpoint-url"]


def relabel(config: list[Doc], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep, drop, replace) of one target's labels; None if dropped."""
    labels = dict(labels)
    for step in config:
        value = step.get("separator", ";").join(labels.get(s, "") for s in step["source_labels"])
        match = re.fullmatch(step.get("regex", "(.*)"), value)
        action = step.get("action", "replace")
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$(\d+)", r"\\\1", step.get("replacement", "$1"))
            labels[step["target_label"]] = match.expand(replacement)
    return labels


def _meta(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def test_prometheus_scrapes_every_service_and_grafana_reads_prometheus() -> None:
    docs = overlay("dev")
    config = yaml.safe_load(named(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (pods,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    # Prometheus makes one target per declared container port (address <pod IP>:<port>), or
    # one at the bare pod IP for a pod that declares none: either way, the annotations decide
    targets: dict[str, set[tuple[str, str]]] = {}
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        ports = [
            p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        ]
        for address in [f"{POD_IP}:{port}" for port in ports] + [POD_IP]:
            meta = {
                "__address__": address,
                "__metrics_path__": "/metrics",
                "__meta_kubernetes_pod_ip": POD_IP,
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_container_init": "false",
                "__meta_kubernetes_namespace": NAMESPACE,
                "__meta_kubernetes_pod_name": f"{doc['metadata']['name']}-0",
            }
            for key, value in template["metadata"]["labels"].items():
                meta[f"__meta_kubernetes_pod_label_{_meta(key)}"] = value
            for key, value in template["metadata"].get("annotations", {}).items():
                meta[f"__meta_kubernetes_pod_annotation_{_meta(key)}"] = value
            target = relabel(pods["relabel_configs"], meta)
            if target is not None:
                found = (target["__address__"], target["__metrics_path__"])
                targets.setdefault(target["job"], set()).add(found)
    assert targets == {
        "ingest-api": {(f"{POD_IP}:8000", "/metrics")},
        "aggregator": {(f"{POD_IP}:8001", "/metrics")},
        "cleaner": {(f"{POD_IP}:8002", "/metrics")},
        "s3-sink": {(f"{POD_IP}:8003", "/metrics")},
        "emulator": {(f"{POD_IP}:8004", "/metrics")},
    }
    (role,) = of_kind(docs, "Role")
    assert {"list", "watch"} <= set(role["rules"][0]["verbs"]) and role["rules"][0][
        "resources"
    ] == ["pods"]

    sources = yaml.safe_load(
        named(docs, "ConfigMap", "grafana-provisioning-datasources")["data"]["datasources.yaml"]
    )["datasources"]
    prometheus = named(docs, "Service", "prometheus")
    assert [(s["uid"], s["url"]) for s in sources] == [
        ("prometheus", f"http://prometheus:{prometheus['spec']['ports'][0]['port']}")
    ]
    providers = yaml.safe_load(
        named(docs, "ConfigMap", "grafana-provisioning-dashboards")["data"]["dashboards.yaml"]
    )["providers"]
    grafana = named(docs, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]
    dashboards = named(docs, "ConfigMap", "grafana-dashboards")
    assert set(dashboards["data"]) == {"pipeline-health.json", "business.json"}
    mounted = _on_volume(grafana, providers[0]["options"]["path"], writable=False)
    volumes = named(docs, "Deployment", "grafana")["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == mounted]
    assert volume["configMap"]["name"] == dashboards["metadata"]["name"]
    for text in dashboards["data"].values():
        uids = set(re.findall(r'"uid":\s*"([^"]+)"', json.dumps(json.loads(text))))
        datasource_uids = {u for u in uids if u == "prometheus" or "datasource" in u}
        assert datasource_uids <= {"prometheus"}, datasource_uids


def test_the_relabel_check_can_fail() -> None:
    assert (
        relabel([{"source_labels": ["a"], "action": "keep", "regex": "true"}], {"a": "no"}) is None
    )


# ---- overlays -------------------------------------------------------------------------------


def test_dev_is_small_and_in_cluster() -> None:
    docs = overlay("dev")
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        assert doc["spec"]["replicas"] == 1, doc["metadata"]["name"]
    for workload, _, container in pinpipe_containers(docs):
        if workload["kind"] != "Deployment":
            continue
        requests = container["resources"]["requests"]
        assert requests["cpu"].endswith("m") and int(requests["cpu"][:-1]) <= 100, requests
    names = {app_name(d["metadata"]["labels"]) for d in of_kind(docs, "Deployment")}
    assert names == {*SERVICES, "emulator", "prometheus", "grafana"}
    assert of_kind(docs, "Kafka") and named(docs, "StatefulSet", "seaweedfs")
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    assert not [d for d in of_kind(docs, "CronJob") if d["metadata"]["name"] == "spark-backfill"]


def test_prod_scales_and_reads_kafka_and_s3_from_outside() -> None:
    docs = overlay("prod")
    config = named(docs, "ConfigMap", "pinpipe-config")["data"]
    partitions = int(config["PINPIPE_TOPIC_PARTITIONS"])
    assert "kafka-bootstrap" not in config["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"]
    assert not of_kind(docs, "Kafka") and not of_kind(docs, "StatefulSet")
    assert not of_kind(docs, "Secret"), "prod's Secrets are created outside the repository"
    for service in SERVICES:
        assert named(docs, "Deployment", service)["spec"]["replicas"] >= 2, service
    assert {"prometheus", "grafana"} <= {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert set(autoscalers) == {"ingest-api", "cleaner", "s3-sink"}  # not the stateful aggregator
    for target, hpa in autoscalers.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert named(docs, "Deployment", target)
        assert hpa["spec"]["minReplicas"] >= 2
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        if target != "ingest-api":  # consumers: replicas beyond the partitions idle
            assert hpa["spec"]["maxReplicas"] <= partitions
    aggregator = named(docs, "Deployment", "aggregator")["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = {v["name"]: v.get("value") for v in aggregator["env"]}
    assert int(env["PINPIPE_AGGREGATOR_STANDBY_REPLICAS"]) >= 1


def test_batch_report_and_backfill() -> None:
    """The daily report (base, so in both overlays) and the backfill template (prod only):
    a suspended CronJob on the Spark image, started by hand with `kubectl create job --from`."""
    for name in OVERLAYS:
        report = named(overlay(name), "CronJob", "batch-report")
        assert not report["spec"].get("suspend")
        minute, hour, day, month, weekday = report["spec"]["schedule"].split()
        assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    backfill = named(overlay("prod"), "CronJob", "spark-backfill")
    assert backfill["spec"]["suspend"] is True
    (container,) = backfill["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert image_name(container["image"]) == "pinpipe-spark"
    assert container["args"][0] == "backfill"


def test_readme_deploy_section() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Deploy on Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    assert readme.index("## Deploy on Kubernetes") < readme.index("## Benchmarks")
    first_command = re.search(r"```bash\n(.+)", section)
    assert first_command and first_command[1].startswith("kubectl apply -k k8s/overlays/local")
    for path in (K8S / "components").iterdir():
        assert f"`{path.name}`" in section, path.name
    for secret in ("pinpipe-s3", "grafana-admin", "pinpipe-ingest"):
        assert f"`{secret}`" in section, secret
    assert "spark-backfill" in section and "batch-report" in section
