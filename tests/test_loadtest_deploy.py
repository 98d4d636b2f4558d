"""The load test against deployments as they run: one endpoint per task (three real local Tritons standing for
the multitask InferenceService and two per-task ones), the :authority and TLS on the wire (a TLS gRPC proxy
in front of Triton that records the authority it receives), and Locust's own distributed mode (a master and
two worker processes) with exact statistics on the master."""

from __future__ import annotations

import csv
import datetime
import json
import os
import re
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from mtserve.cli import main
from mtserve.core.errors import UserError
from mtserve.loadtest import protocol
from mtserve.serving.endpoint import TLS, Endpoint
from tests.conftest import first_segment

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {
    "tasks",
    "slo_p99_ms",
    "multitask",
    "per_task",
    "cost_reduction",
    "cost_reduction_interval",
    "ideal_cost_reduction",
    "sizing",
}
TINY_SEARCH = [
    "--slo-ms",
    "2000",
    "--max-steps",
    "2",
    "--duration",
    "1.5",
    "--max-duration",
    "2",
    "--min-samples",
    "20",
    "--warmup",
    "0.5",
    "--max-time",
    "60",
    "--start-rps",
    "4",
    "--pool-size",
    "50",
]


# ---------------------------------------------------------------- three deployments
@pytest.fixture(scope="module")
def deployments(tiny_repo):
    """{"multitask": server, <task a>: server, <task b>: server}: explicit model control, each Triton loads
    only what its InferenceService would (`--load-model=multitask` / `--load-model=single_<task>`)."""
    from mtserve.serving.triton import TritonServer

    tasks = list(json.loads((tiny_repo / "registry.json").read_text())["tasks"])[:2]
    servers = {"multitask": TritonServer(tiny_repo, model_control="explicit", load_models=["multitask"])}
    for t in tasks:
        servers[t] = TritonServer(tiny_repo, model_control="explicit", load_models=[f"single_{t}"])
    try:
        for s in servers.values():  # one after another: concurrent starts raced (multitask left unloaded)
            s.start()
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def _per_task_map(deployments) -> tuple[list[str], str]:
    tasks = [k for k in deployments if k != "multitask"]
    return tasks, ",".join(f"{t}={deployments[t].grpc_url}" for t in tasks)


@pytest.mark.triton
def test_loadtest_against_one_deployment_per_task(deployments, tiny_repo, tmp_path, capsys):
    """`mtserve loadtest --url MT --per-task-url a=...,b=...` on two local Locust workers: reports written,
    each task's calls went to its own Triton, and Triton's statistics at each address are in the report."""
    tasks, mapping = _per_task_map(deployments)
    mt = deployments["multitask"].grpc_url
    args = ["loadtest", "--url", mt, "--per-task-url", mapping, "--tasks", ",".join(tasks), "--workers", "2"]
    assert main([*args, *TINY_SEARCH, "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    cap = json.loads((tmp_path / "capacity.json").read_text())
    assert set(cap) == SCHEMA | {"server"} and cap["tasks"] == 2
    assert cap["multitask"]["max_rps"] > 0 and cap["per_task"]["max_rps"] > 0
    steps = json.loads((tmp_path / "capacity_steps.json").read_text())
    assert steps["load_generators"] == 2
    for t in tasks:
        assert steps["endpoints"][f"single_{t}"] == deployments[t].grpc_url
    for st in steps["steps"]:
        extra = st["extra"]
        assert st["errors"] == 0 and len(extra["generators"]) == 2
        assert sum(g["recorded"] for g in extra["generators"].values()) == st["count"]
        server = extra["server"]
        if st["workload"] == "multitask":  # one address: plain model names, the ensemble and its parts
            assert {"multitask", "tokenizer", first_segment(tiny_repo)} <= set(server)
            assert server["multitask"]["requests"] >= st["count"]
        else:  # each single_<task> at its own deployment, and nothing else called there
            for t in tasks:
                row = server[f"single_{t} @ {deployments[t].grpc_url}"]
                assert row["requests"] >= st["count"] and row["request_ms"] > 0
            assert not any(k.startswith("multitask") for k in server)
    md = (tmp_path / "capacity.md").read_text()
    assert "## Where the server's time goes" in md and "Model compute per utterance" in md
    trunk = cap["server"]["multitask"]["models"][first_segment(tiny_repo)]
    assert (
        trunk["compute_infer_ms"] > 0
        and 0 < trunk["exec_ms_total"] <= trunk["compute_infer_ms"] * trunk["requests"] * 1.5
    )
    reports = sorted(p.name for p in (tmp_path / "locust").iterdir())
    assert any(n.endswith("_stats.csv") for n in reports) and any(n.endswith(".html") for n in reports)
    assert len([n for n in reports if n.endswith("_stats.csv")]) == len(steps["steps"])


@pytest.mark.triton
def test_a_wrong_per_task_map_fails_at_once_naming_the_task_and_address(deployments):
    from mtserve.serving.triton import free_port

    tasks, _ = _per_task_map(deployments)
    a, b = tasks
    mt, at_a, at_b = (deployments[k].grpc_url for k in ("multitask", a, b))
    gone = f"127.0.0.1:{free_port()}"
    cases = [
        (f"{a}={at_a}", rf"--per-task-url gives no value for task\(s\) \['{b}'\]"),
        (f"{a}={at_b},{b}={at_a}", rf"task '{a}': model 'single_{a}' is not available at {at_b}"),
        (f"{a}={at_a},{b}={gone}", rf"cannot reach the per-task deployment of task\(s\) \['{b}'\] at {gone}"),
        (f"{a}={at_a},{b}={at_b},nope={at_b}", r"names task\(s\) \['nope'\]"),
    ]
    for mapping, match in cases:
        t0 = time.monotonic()
        with pytest.raises(UserError, match=match):
            protocol.make_plan(protocol.Targets(mt, per_task_url=mapping), tasks)
        assert time.monotonic() - t0 < 10
    # the multitask address serving no single_<task> (its own InferenceService loads only multitask)
    with pytest.raises(UserError, match=rf"task '{a}': model 'single_{a}' is not available at {mt}"):
        protocol.make_plan(protocol.Targets(mt), tasks)
    assert main(["loadtest", "--url", mt, "--per-task-url", f"{a}={at_a}", "--tasks", f"{a},{b}"]) == 2


def test_per_task_targets_resolve_maps_templates_and_defaults():
    tls = TLS("ca.pem")
    t = protocol.Targets(
        "gw:443", "mt.example", "{task_dns}.models.test:443", "mtserve-{task_dns}.ns.example", tls
    )
    eps = t.per_task(["intent_v2", "sst2"])
    assert eps["intent_v2"] == Endpoint("intent-v2.models.test:443", "mtserve-intent-v2.ns.example", tls)
    assert (
        eps["sst2"].describe()
        == "sst2.models.test:443 (authority mtserve-sst2.ns.example, TLS, root certificate ca.pem)"
    )
    assert t.multitask() == Endpoint("gw:443", "mt.example", tls)
    # no per-task address: the multitask endpoint, authority included (one Triton serving everything)
    same = protocol.Targets("h:1", "mt.example").per_task(["a"])
    assert same["a"] == Endpoint("h:1", "mt.example")
    # a per-task address without a per-task authority sends none (the multitask host would route wrongly)
    assert protocol.Targets("h:1", "mt.example", "h:2").per_task(["a"])["a"] == Endpoint("h:2")
    assert (
        protocol.Targets("h:1", per_task_url="a=grpc://x:1, b=y:2").per_task(["a", "b"])["a"].address == "x:1"
    )
    with pytest.raises(UserError, match=r"gives no value for task\(s\) \['b'\]"):
        protocol.Targets("h:1", per_task_url="a=x:1").per_task(["a", "b"])
    with pytest.raises(UserError, match="only {task} and {task_dns}"):
        protocol.Targets("h:1", per_task_url="{name}:1").per_task(["a"])
    with pytest.raises(UserError, match="together"):
        TLS(client_cert="c.pem")
    # the plan travels to Locust workers as plain data
    plan = protocol.Plan(["a"], {"single_a": ["a_scores"]}, {"single_a": eps["sst2"]})
    assert protocol.Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


# ---------------------------------------------------------------- :authority and TLS on the wire
def _certificates(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for mtserve.models.test and *.models.test, a client certificate, and
    an unrelated CA: PEM files made here (the `cryptography` package)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def cert(subject_key, name, issuer_key=None, issuer_name=None, ca=False, sans=()):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name or subject)
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
        return b.sign(issuer_key or subject_key, hashes.SHA256())

    def write(name, obj):
        p = d / name
        if hasattr(obj, "private_bytes"):
            data = obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            data = obj.public_bytes(serialization.Encoding.PEM)
        p.write_bytes(data)
        return p

    ca_key, other_key, server_key, client_key = key(), key(), key(), key()
    ca = cert(ca_key, "mtserve test CA", ca=True)
    other = cert(other_key, "some other CA", ca=True)
    server = cert(
        server_key, "mtserve.models.test", ca_key, ca.subject, sans=("mtserve.models.test", "*.models.test")
    )
    client = cert(client_key, "load generator", ca_key, ca.subject)
    return {
        "ca": write("ca.pem", ca),
        "other_ca": write("other-ca.pem", other),
        "server_cert": write("server.pem", server),
        "server_key": write("server.key", server_key),
        "client_cert": write("client.pem", client),
        "client_key": write("client.key", client_key),
    }


class RecordingProxy:
    """A TLS gRPC server (client certificates required) that forwards every unary call to Triton as raw
    bytes and records (method, :authority, model name) of each: what reached the wire."""

    def __init__(self, upstream: str, certs: dict[str, Path]):
        self.calls: list[tuple[str, str, str]] = []
        self.upstream = grpc.insecure_channel(upstream)
        proxy = self

        class Forward(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method

                def handle(request: bytes, context):
                    # the :authority the client sent: grpc keeps it in the call details' host
                    host = context._rpc_event.call_details.host.decode()
                    proxy.calls.append((method.rsplit("/", 1)[-1], host, _model_name(method, request)))
                    try:
                        return proxy.upstream.unary_unary(method)(request, timeout=10)
                    except grpc.RpcError as e:
                        context.abort(e.code(), e.details())

                return grpc.unary_unary_rpc_method_handler(handle)

        creds = grpc.ssl_server_credentials(
            [(certs["server_key"].read_bytes(), certs["server_cert"].read_bytes())],
            root_certificates=certs["ca"].read_bytes(),
            require_client_auth=True,
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers([Forward()])
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()
        self.address = f"127.0.0.1:{self.port}"

    def close(self):
        self.server.stop(grace=None)
        self.upstream.close()


def _model_name(method: str, request: bytes) -> str:
    from tritonclient.grpc import service_pb2

    kind = {"ModelMetadata": service_pb2.ModelMetadataRequest, "ModelInfer": service_pb2.ModelInferRequest}
    cls = kind.get(method.rsplit("/", 1)[-1])
    if cls is None:
        return ""
    msg = cls.FromString(request)
    return msg.model_name if cls is service_pb2.ModelInferRequest else msg.name


@pytest.mark.triton
def test_authority_and_tls_reach_the_wire(triton, tmp_path, capsys):
    certs = _certificates(tmp_path)
    proxy = RecordingProxy(triton.grpc_url, certs)
    tls = TLS(str(certs["ca"]), str(certs["client_cert"]), str(certs["client_key"]))
    try:
        # mtserve predict through the TLS proxy, naming the multitask InferenceService's host
        rc = main(
            [
                "predict",
                "--url",
                proxy.address,
                "--authority",
                "mtserve.models.test",
                "--tls",
                "--root-cert",
                str(certs["ca"]),
                "--client-cert",
                str(certs["client_cert"]),
                "--client-key",
                str(certs["client_key"]),
                "--json",
                "book a table for two",
            ]
        )
        out = capsys.readouterr()
        assert rc == 0, out.err
        answer = json.loads(out.out)
        assert len(answer) == 1 and answer[0]
        assert ("ModelInfer", "mtserve.models.test", "multitask") in proxy.calls
        # the load test's pre-flight: one authority per task from a template, over the same TLS address
        tasks = list(json.loads((triton.repo / "registry.json").read_text())["tasks"])
        proxy.calls.clear()
        targets = protocol.Targets(
            proxy.address, "mtserve.models.test", proxy.address, "mtserve-{task_dns}.models.test", tls
        )
        plan = protocol.make_plan(targets)
        assert plan.tasks == tasks
        got = {(m, host) for method, host, m in proxy.calls if method == "ModelMetadata"}
        assert ("multitask", "mtserve.models.test") in got
        for t in tasks:
            assert (f"single_{t}", f"mtserve-{t.replace('_', '-')}.models.test") in got
            assert plan.endpoints[f"single_{t}"].authority == f"mtserve-{t.replace('_', '-')}.models.test"
        # and Triton's statistics through the same endpoint
        stats = protocol.server_statistics(targets.multitask())
        assert stats["multitask"]["success"][0] >= 1
        n = len(proxy.calls)
        # a root certificate that did not sign the server's: a clear error, and nothing reached Triton
        wrong = protocol.Targets(
            proxy.address,
            "mtserve.models.test",
            tls=TLS(str(certs["other_ca"]), str(certs["client_cert"]), str(certs["client_key"])),
        )
        with pytest.raises(UserError, match=rf"TLS handshake with {proxy.address} failed.*--root-cert"):
            protocol.make_plan(wrong)
        # plaintext to a TLS endpoint: the error says to give --tls
        with pytest.raises(UserError, match="give --tls"):
            protocol.make_plan(protocol.Targets(proxy.address, "mtserve.models.test"))
        assert len(proxy.calls) == n
        assert (
            main(["predict", "--url", proxy.address, "--tls", "--root-cert", str(certs["other_ca"]), "x"])
            == 2
        )
        assert "--root-cert" in capsys.readouterr().err
    finally:
        proxy.close()


# ---------------------------------------------------------------- Locust's own distributed mode
@pytest.mark.triton
def test_locust_master_and_two_workers_measure_exactly(deployments, tmp_path):
    """`locust --master` + two `locust --worker` processes on k8s/loadtest's locustfile, headless for a few
    seconds against the three deployments: no errors; the master's utterance count is the sum of what each
    worker says it sent and what Triton counted; its p99 is computed from every worker's samples."""
    from mtserve.serving.triton import free_port

    tasks, mapping = _per_task_map(deployments)
    mt = deployments["multitask"]
    before = protocol.server_statistics(Endpoint(mt.grpc_url))["multitask"]["success"][0]
    port = free_port()
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / "k8s" / "loadtest" / "locustfile.py")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stats, samples = tmp_path / "utterances.json", tmp_path / "samples.csv"
    master = subprocess.Popen(
        [
            *locust,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--headless",
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "60",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "5s",
            "--host",
            mt.grpc_url,
            "--per-task-url",
            mapping,
            "--tasks",
            ",".join(tasks),
            "--throughput",
            "3",
            "--pool-size",
            "50",
            "--utterance-stats",
            str(stats),
            "--utterance-samples",
            str(samples),
            "--csv",
            str(tmp_path / "locust"),
            "--exit-code-on-error",
            "1",
            "--only-summary",
            "MultitaskUser",
            "PerTaskUser",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    workers = [
        subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        master_out, _ = master.communicate(timeout=150)
        worker_outs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert master.returncode == 0, master_out[-4000:]
    assert all(w.returncode == 0 for w in workers), worker_outs
    result = json.loads(stats.read_text())
    # what each worker says it sent, from its own log
    sent = {}
    for out in worker_outs:
        m = re.findall(r"mtserve: load generator (\S+) sent (\d+) utterances in window run", out)
        assert len(m) == 1, out[-3000:]
        sent[m[0][0]] = int(m[0][1])
    gens = result["generators"]
    assert set(gens) == set(sent)
    for gen, n in sent.items():
        assert n > 0 and gens[gen]["started"] == gens[gen]["recorded"] == n and gens[gen]["undrained"] == 0
    assert result["utterances"] == sum(sent.values())
    assert all(w["errors"] == 0 for w in result["workloads"].values())
    assert all(c["errors"] == 0 for c in result["calls"].values())
    # Triton counted exactly the multitask utterances the master reports (none started outside the window)
    after = protocol.server_statistics(Endpoint(mt.grpc_url))["multitask"]["success"][0]
    assert after - before == result["workloads"]["multitask"]["count"]
    # the master's p99 is the exact percentile of every worker's samples together
    rows = list(csv.DictReader(samples.open()))
    for workload, summary in result["workloads"].items():
        mine = [r for r in rows if r["type"] == "utterance" and r["name"] == workload]
        assert len(mine) == summary["count"]
        p99 = protocol.percentile(sorted(float(r["latency_ms"]) for r in mine), 99)
        assert p99 == pytest.approx(summary["p99_ms"], abs=0.002)
    # every worker's samples are among them (Locust's dispatcher decides which user classes each one runs)
    assert {r["generator"] for r in rows if r["type"] == "utterance"} == set(gens)
    assert "mtserve: multitask:" in master_out
