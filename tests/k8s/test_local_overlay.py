"""``kubectl apply -k k8s/overlays/local`` on a real cluster (tests/k8s/conftest.py), and the
pipeline proven there: every workload becomes available; the in-cluster emulator posts through
the ingest Service on both routes; the live answers read through the aggregator's Service equal
the ``batch-report`` Job's answers over the lake the in-cluster sink wrote; pods of every
service and the Kafka pod are deleted with ``--force --grace-period=0`` under load, and every
record the ingest API acknowledged is then in the lake exactly once, with live == batch again;
the NetworkPolicies hold flow by flow with real connections; Prometheus scrapes every pod and
every dashboard panel's query returns data there.

The tests run in order on one deployment (each leaves the pipeline as the next expects).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from shared.lake import Lake, open_lake
from tests.conftest import wait_until
from tests.dashboard_checks import panel_queries, provoke_twice, wait_for_every_panel
from tests.k8s.conftest import NAMESPACE, Kube, PortForwardFailed
from tests.lake_rows import zone_rows
from tests.servers import REPO_ROOT
from tests.unit.test_k8s_consistency import flows

# building the cluster the first time on a machine takes ~20 min (tests/k8s/conftest.py)
pytestmark = [pytest.mark.k8s, pytest.mark.timeout(3600)]
OVERLAY = REPO_ROOT / "k8s" / "overlays" / "local"
SERVICES = ["ingest-api", "cleaner", "aggregator", "s3-sink"]
S3_KEYS = ("pinpipe", "pinpipe-dev-secret")  # the s3 component's development credentials
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


@pytest.fixture(scope="module")
def deployed(kube: Kube) -> Iterator[Kube]:
    started = time.monotonic()
    kube.run("apply", "--server-side", "-k", str(OVERLAY), timeout=300)
    for kind in ("deployment", "statefulset"):
        for name in kube.ns("get", kind, "-o", "name").split():
            kube.ns("rollout", "status", name, "--timeout=600s", timeout=660)
    print(f"every workload available {time.monotonic() - started:.0f}s after the apply")
    try:
        yield kube
    finally:
        print(kube.ns("get", "pods", "-o", "wide", check=False))
        for name in [*SERVICES, "emulator", "kafka"]:
            print(
                f"--- {name}\n"
                + kube.ns(
                    "logs",
                    "-l",
                    f"app.kubernetes.io/name={name}",
                    "--tail=30",
                    "--all-containers",
                    check=False,
                )
            )
        kube.run(
            "delete",
            "namespace",
            NAMESPACE,
            "--wait=true",
            "--timeout=180s",
            timeout=240,
            check=False,
        )


def test_every_workload_is_available(deployed: Kube) -> None:
    ready = {
        d["metadata"]["name"]: d["status"].get("availableReplicas", 0)
        for d in deployed.json("-n", NAMESPACE, "get", "deployments")["items"]
    }
    assert set(ready) >= {*SERVICES, "emulator", "prometheus"}, ready
    assert all(count >= 1 for count in ready.values()), ready
    sets = deployed.json("-n", NAMESPACE, "get", "statefulsets")["items"]
    assert {s["metadata"]["name"]: s["status"].get("readyReplicas") for s in sets} == {
        "kafka": 1,
        "seaweedfs": 1,
    }
    # the StatefulSets' claims are bound; `batch-reports` waits for its first Job's pod
    # (the StorageClass binds on first use), which test_live_answers_equal_the_batch_report runs
    claims = {
        c["metadata"]["name"]: c["status"]["phase"]
        for c in deployed.json("-n", NAMESPACE, "get", "pvc")["items"]
    }
    assert claims == {
        "data-kafka-0": "Bound",
        "data-seaweedfs-0": "Bound",
        "batch-reports": "Pending",
    }


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_dev_and_prod_pass_the_api_servers_dry_run(deployed: Kube, overlay: str) -> None:
    """Every built-in object of the other overlays, admitted by the API server (schemas,
    defaulting, admission, immutable fields against what runs). Strimzi's objects cannot be:
    no registry here carries its CRDs (asserted: the cluster does not know the API group)."""
    rendered = [
        doc
        for doc in yaml.safe_load_all(deployed.run("kustomize", str(OVERLAY.parent / overlay)))
        if doc
    ]
    strimzi = [d for d in rendered if d["apiVersion"].startswith("kafka.strimzi.io/")]
    builtin = [d for d in rendered if d not in strimzi]
    assert {d["kind"] for d in strimzi} <= {"Kafka", "KafkaNodePool", "KafkaTopic"}
    assert not deployed.run("api-resources", "--api-group=kafka.strimzi.io", "-o", "name")
    output = deployed.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=pinpipe-dry-run",
        "--force-conflicts",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(builtin),
    )
    applied = [line for line in output.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(builtin), output


def test_the_emulator_posts_through_the_ingest_service_on_both_routes(deployed: Kube) -> None:
    """The emulator posts with its key from the generated Secret; in the cluster the API
    requires keys (the base fails closed), so a post without one is refused."""
    with deployed.port_forward("svc/ingest-api", 8000) as ingest:
        keyless = httpx.post(
            f"{ingest}/topics/pinterest.pin", json={"records": []}, headers=JSON_V2, timeout=30
        )
        assert keyless.status_code == 403, keyless.text

        def both_routes() -> bool:
            lines = httpx.get(f"{ingest}/metrics", timeout=10).text.splitlines()
            ok = [
                line
                for line in lines
                if line.startswith("pinpipe_ingest_api_requests_total")
                and 'status="200"' in line
                and float(line.split()[-1]) > 0
            ]
            return any("/topics/" in line for line in ok) and any(
                "/streams/" in line for line in ok
            )

        wait_until(both_routes, timeout=180, interval=2, what="posts on both routes")


def test_live_answers_equal_the_batch_report(deployed: Kube) -> None:
    _stop_the_load(deployed)
    _live_equals_batch(deployed)


def test_deleted_pods_lose_and_double_nothing(deployed: Kube) -> None:
    deployed.ns("scale", "deployment/emulator", "--replicas=1")
    acknowledged: list[tuple[str, int, int]] = []
    _post(deployed, acknowledged, batches=5)
    for victim in [*SERVICES, "kafka", "emulator"]:
        pod = deployed.ns(
            "get",
            "pods",
            "-l",
            f"app.kubernetes.io/name={victim}",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        )
        deployed.ns("delete", "pod", pod, "--force", "--grace-period=0")
        _post(deployed, acknowledged, batches=2)
    for name in [*SERVICES, "emulator"]:
        deployed.ns("rollout", "status", f"deployment/{name}", "--timeout=300s", timeout=330)
    deployed.ns("rollout", "status", "statefulset/kafka", "--timeout=300s", timeout=330)
    _post(deployed, acknowledged, batches=5)
    _stop_the_load(deployed)
    with _lake(deployed) as lake:

        def all_in_the_lake() -> bool:
            places = Counter(
                (r["_topic"], r["_partition"], r["_offset"])
                for r in zone_rows(lake, "raw", ["_topic", "_partition", "_offset"])
            )
            assert not [p for p, n in places.items() if n > 1], "an offset twice in the lake"
            return all(places[a] == 1 for a in acknowledged)

        wait_until(all_in_the_lake, timeout=300, interval=5, what="every acknowledged record")
        assert len(acknowledged) == (5 + 2 * 6 + 5) * 20
    _live_equals_batch(deployed)


def test_network_policies_hold_flow_by_flow(deployed: Kube, outside_host: str) -> None:
    """Each flow of the flow table (tests/unit/test_k8s_consistency.py, the README's list)
    connects from a pod labelled as its source to the target pod's IP, and each flow it denies
    is refused; "outside" is a pod of another namespace as a source, and as a target a host
    outside the cluster (its own network namespace, routed by the node). Among them: the
    aggregator's internal port 8011 is reached by aggregator pods only. Through the aggregator's
    Service, neither /internal/aggregates nor Faust's own pages are served."""
    deployed.ns("scale", "deployment/emulator", "--replicas=1")
    deployed.ns("rollout", "status", "deployment/emulator", "--timeout=300s", timeout=330)
    allowed, denied = flows("local")
    # a stranger: a pod of the namespace that no policy names
    denied = [
        *denied,
        ("stranger", "kafka", 0),
        ("stranger", "s3", 0),
        ("stranger", "cleaner", 8002),
        ("stranger", "aggregator", 8011),
    ]
    checks: dict[str, list[tuple[str, int, bool]]] = {}
    for flows_, expected in ((allowed, True), (denied, False)):
        for source, target, port in flows_:
            host, number = _address(deployed, outside_host, target, port)
            checks.setdefault(source, []).append((host, number, expected))
    wrong = []
    for source, targets in checks.items():
        results = _probe(deployed, source, [(h, p) for h, p, _ in targets])
        for (host, port, expected), connected in zip(targets, results, strict=True):
            if connected != expected:
                verb = "connects" if connected else "is refused"
                wrong.append(f"{source} → {host}:{port} {verb}")
    assert not wrong, "\n".join(wrong)

    with deployed.port_forward("svc/aggregator", 8001) as aggregator:
        assert httpx.get(f"{aggregator}/openapi.json", timeout=30).status_code == 200
        for path in ("/internal/aggregates", "/", "/router/", "/table/", "/graph/"):
            response = httpx.get(aggregator + path, timeout=30)
            assert response.status_code == 404, (path, response.text[:200])
            assert response.json()["error_code"] == 40402, path


def test_prometheus_scrapes_every_pod_and_every_panel_has_data(deployed: Kube) -> None:
    deployed.ns("scale", "deployment/emulator", "--replicas=1")
    with (
        deployed.port_forward("svc/prometheus", 9090) as prometheus,
        deployed.port_forward("svc/ingest-api", 8000) as ingest,
    ):

        def scraped() -> set[str]:
            targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
            return {t["labels"]["job"] for t in targets["activeTargets"] if t["health"] == "up"}

        wait_until(
            lambda: scraped() >= {*SERVICES, "emulator"},
            timeout=180,
            interval=3,
            what="Prometheus to scrape every pinpipe pod",
        )
        provoke_twice(ingest, "pinterest", prometheus, api_key=deployed.ingest_key())
        wait_for_every_panel(prometheus, panel_queries(), timeout=240)


# -- helpers ---------------------------------------------------------------------------------


def _post(kube: Kube, acknowledged: list[tuple[str, int, int]], batches: int) -> None:
    """Post batches of 20 pins through the ingest Service, retrying what is not acknowledged
    (through a new port-forward each time: the pod behind the last one may be gone); note
    (topic, partition, offset) of each record acknowledged."""
    topic = "pinterest.pin"
    headers = {**JSON_V2, "x-api-key": kube.ingest_key()}
    for _ in range(batches):
        base = len(acknowledged)
        records = [{"value": {"index": 900_000 + base + i, "category": "k8s"}} for i in range(20)]

        def sent(records: list[dict[str, Any]] = records) -> bool:
            try:
                with kube.port_forward("svc/ingest-api", 8000) as ingest:
                    response = httpx.post(
                        f"{ingest}/topics/{topic}",
                        json={"records": records},
                        headers=headers,
                        timeout=30,
                    )
            except (httpx.HTTPError, PortForwardFailed):
                return False
            if response.status_code != 200:
                return False
            offsets = response.json()["offsets"]
            if any(o.get("error_code") for o in offsets):
                return False
            acknowledged.extend((topic, o["partition"], o["offset"]) for o in offsets)
            return True

        wait_until(sent, timeout=300, interval=1, what="a batch acknowledged")


def _stop_the_load(kube: Kube) -> None:
    kube.ns("scale", "deployment/emulator", "--replicas=0")
    kube.ns(
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=emulator",
        "--timeout=120s",
        timeout=150,
        check=False,
    )


def _live_equals_batch(kube: Kube) -> None:
    """Run the batch-report Job until its answers equal the live ones (the sink publishes what
    it holds within a minute)."""

    def equal() -> str | None:
        name = f"report-{int(time.time())}"
        kube.ns("create", "job", name, "--from=cronjob/batch-report")
        kube.ns("wait", "--for=condition=complete", f"job/{name}", "--timeout=300s", timeout=330)
        reports = _reports_folder(kube)  # bound once the first Job's pod used it
        with kube.port_forward("svc/aggregator", 8001) as aggregator:
            for path in sorted(reports.glob("*.csv")):
                rows = list(csv.reader(io.StringIO(path.read_text())))
                body = httpx.get(f"{aggregator}/aggregates/{path.stem}", timeout=30).json()
                live = [[_cell(row[c]) for c in rows[0]] for row in body.get("rows", [])]
                if live != [[_cell(v) for v in row] for row in rows[1:]]:
                    return None
        return name

    wait_until(equal, timeout=420, interval=10, what="live == batch for every question")
    assert len(list(_reports_folder(kube).glob("*.csv"))) >= 10


def _cell(value: Any) -> str:
    """A value as the CSV writes it (numbers compared as numbers)."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(int(number)) if number.is_integer() else repr(round(number, 6))


def _reports_folder(kube: Kube) -> Path:
    """The hostPath folder behind the batch-reports claim."""
    claim = kube.json("-n", NAMESPACE, "get", "pvc", "batch-reports")
    volume = kube.json("get", "pv", claim["spec"]["volumeName"])
    return Path(volume["spec"]["hostPath"]["path"])


@contextlib.contextmanager
def _lake(kube: Kube) -> Iterator[Lake]:
    """The lake the in-cluster sink writes, through a port-forward to SeaweedFS."""
    with kube.port_forward("svc/seaweedfs", 8333) as endpoint:
        yield open_lake(
            "s3://pinpipe-lake/lake",
            s3_endpoint_url=endpoint,
            s3_access_key_id=SecretStr(S3_KEYS[0]),
            s3_secret_access_key=SecretStr(S3_KEYS[1]),
        )


POD_NAMES = {"kafka": "kafka", "s3": "seaweedfs"}
DEFAULT_PORTS = {"kafka": 9092, "s3": 8333}


def _address(kube: Kube, outside: str, target: str, port: int) -> tuple[str, int]:
    """A flow target's address: a pod's IP, or the outside host's."""
    port = port or DEFAULT_PORTS[target]
    if target == "outside":
        return outside, port
    name = POD_NAMES.get(target, target)
    ip = kube.ns(
        "get",
        "pods",
        "-l",
        f"app.kubernetes.io/name={name}",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    )
    assert ip, f"no running pod of {name}"
    return ip, port


OUTSIDE_NETNS = "pinpipe-outside"
OUTSIDE_ADDRESS = "10.250.0.2"  # outside the pod (10.244/16) and Service (10.96/16) ranges
OUTSIDE_PORTS = ("80", "443", "9092")  # those the flow table names for "outside"
LISTEN = """
import socket, sys, threading
def serve(port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(64)
    return sock
def accept(sock):
    while True:
        sock.accept()[0].close()
listeners = [serve(int(port)) for port in sys.argv[1:]]
for sock in listeners[1:]:
    threading.Thread(target=accept, args=(sock,), daemon=True).start()
print("listening", flush=True)
accept(listeners[0])
"""


@pytest.fixture
def outside_host(deployed: Kube) -> Iterator[str]:
    """A host outside the cluster: a network namespace of its own behind a veth pair, which
    the node routes to, with TCP listeners on the ports the flow table names for "outside"
    (80, 443, 9092), so that a refused flow is told apart from a closed port. (Not the node's
    own address: policies do not govern traffic to the node.) Removed afterwards, with the
    listener, by its pid."""

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", OUTSIDE_NETNS)
    listener: subprocess.Popen[str] | None = None
    try:
        ip("link", "add", "pp-outside", "type", "veth", "peer", "name", "pp-outside-ns")
        ip("link", "set", "pp-outside-ns", "netns", OUTSIDE_NETNS)
        ip("addr", "add", "10.250.0.1/30", "dev", "pp-outside")
        ip("link", "set", "pp-outside", "up")
        inside = ("netns", "exec", OUTSIDE_NETNS, "ip")
        ip(*inside, "addr", "add", f"{OUTSIDE_ADDRESS}/30", "dev", "pp-outside-ns")
        ip(*inside, "link", "set", "pp-outside-ns", "up")
        ip(*inside, "route", "add", "default", "via", "10.250.0.1")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", OUTSIDE_NETNS, sys.executable, "-c", LISTEN, *OUTSIDE_PORTS],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
        yield OUTSIDE_ADDRESS
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=30)
        subprocess.run(["ip", "netns", "delete", OUTSIDE_NETNS], check=False)  # and the veths


PROBE = """
import json, socket, sys
results = []
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=4).close()
        results.append(True)
    except OSError:
        results.append(False)
print("RESULT " + json.dumps(results))
"""


def _probe(kube: Kube, source: str, targets: list[tuple[str, int]]) -> list[bool]:
    """Connect to each target from a pod labelled as ``source`` (a Job's pod, so that no
    ReplicaSet adopts it; "outside": a pod of another namespace); whether each connected.
    The probe runs once the NetworkPolicy enforcer has written the pod's rules (its name in
    kube-router's iptables comments): a pod it has not seen yet is let through, or not let in."""
    name = f"probe-{source}-{int(time.time() * 1000) % 100000}"
    namespace = NAMESPACE
    if source == "outside":
        namespace = "outside"
        kube.run("create", "namespace", namespace, check=False)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": source, "pinpipe.dev/probe": "true"}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "probe",
                            "image": "localhost/pinpipe:dev",
                            "imagePullPolicy": "Never",
                            "command": ["python", "-c", "import time; time.sleep(900)"],
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                        }
                    ],
                },
            },
        },
    }
    kube.run("apply", "-f", "-", stdin=json.dumps(job))
    where = ("-n", namespace)
    try:
        selector = f"job-name={name}"
        kube.run(*where, "wait", "--for=condition=Ready", "pod", "-l", selector, "--timeout=300s")
        pod = kube.run(
            *where, "get", "pod", "-l", selector, "-o", "jsonpath={.items[0].metadata.name}"
        )
        if namespace == NAMESPACE:  # "outside" has no policy: no rules of its own to wait for

            def enforced() -> bool:
                rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
                return f"POD name:{pod} namespace: {namespace}" in rules

            wait_until(enforced, timeout=120, interval=0.5, what=f"the enforcer's rules for {pod}")
        output = kube.run(*where, "exec", pod, "--", "python", "-c", PROBE, json.dumps(targets))
    finally:
        kube.run(*where, "delete", "job", name, "--wait=false", check=False)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    results: list[bool] = json.loads(line[len("RESULT ") :])
    return results
