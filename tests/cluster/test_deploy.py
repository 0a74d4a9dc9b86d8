"""deploy/: every manifest parses, references resolve, probes and drain timing fit."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from voxgate.cluster.config import ClusterSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return out


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs() if d.get("kind") == kind}


def test_every_file_is_valid_yaml_and_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files
    for d in docs():
        assert {"apiVersion", "kind"} <= set(d), d


def _node_spec() -> dict[str, Any]:
    spec: dict[str, Any] = by_kind("Deployment")["voxgate"]["spec"]["template"]["spec"]
    return spec


def test_config_is_valid_and_grace_exceeds_drain() -> None:
    toml = tomllib.loads(by_kind("ConfigMap")["voxgate-config"]["data"]["voxgate.toml"])
    ClusterSettings.model_validate(toml["cluster"])
    assert _node_spec()["terminationGracePeriodSeconds"] > toml["server"]["drain_timeout_s"]


def test_media_nodes_probe_health_and_readiness_and_use_host_network() -> None:
    spec = _node_spec()
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    container = spec["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"] for e in container["env"]}
    assert {"VOXGATE_OBSERVABILITY__NODE_ID", "VOXGATE_SIP__PUBLIC_HOST"} <= env


def test_services_select_existing_pods_and_secrets_exist() -> None:
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in docs()
              if d.get("kind") in ("Deployment", "StatefulSet")]  # fmt: skip
    for name, svc in by_kind("Service").items():
        assert svc["spec"]["selector"] in labels, name
    secrets = set(by_kind("Secret"))
    for d in docs():
        text = yaml.safe_dump(d)
        for ref in ("voxgate-secrets",):
            if ref in text:
                assert ref in secrets
