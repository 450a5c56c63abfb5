"""infra/: the container and cluster definitions parse, agree with each other and with the project, hold no literal
credentials, and name only `mmdream` commands that the CLI has. Pure file checks: no Docker, no cloud, no cluster."""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKERFILE = INFRA / "Dockerfile"
CLUSTER = INFRA / "cluster.yaml"
RAYJOB = INFRA / "rayjob.yaml"
README = INFRA / "README.md"


# --- helpers -------------------------------------------------------------------------------------------------------

def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name}: top level must be a mapping"
    return data


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comment lines dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker also drops comment lines inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return out


def dockerfile_defaults(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """Default values of ARG NAME=VALUE (the ones a plain `docker build` uses)."""
    values: dict[str, str] = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def pip_installs(instructions: list[tuple[str, str]]) -> list[str]:
    """Each `pip install ...` command found in RUN instructions, split at shell separators."""
    found = []
    for word, rest in instructions:
        if word != "RUN":
            continue
        for part in re.split(r"&&|\|\||;", rest):
            if re.search(r"\bpip3?\s+install\b", part):
                found.append(part.strip())
    return found


def markdown_code(text: str) -> str:
    """The fenced blocks and inline code spans of a Markdown text, one per line."""
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return "\n".join(fences + re.findall(r"`([^`\n]+)`", prose))


# `mmdream WORD` where mmdream starts a word (not ghcr.io/OWNER/mmdream, mmdream-s3, import mmdream, ...).
MMDREAM_COMMAND = re.compile(r"(?<![\w./@:-])mmdream[ \t]+([A-Za-z][\w-]*)")


def mmdream_commands(text: str) -> set[str]:
    return set(MMDREAM_COMMAND.findall(text))


@functools.cache
def cli_subcommands() -> frozenset[str]:
    from mmdream.cli import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert actions, "mmdream.cli.build_parser() has no subcommands"
    return frozenset(actions[0].choices)


def containers(rayjob: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = rayjob["spec"]["rayClusterSpec"]
    for c in spec["headGroupSpec"]["template"]["spec"]["containers"]:
        yield "head", c
    for group in spec["workerGroupSpecs"]:
        for c in group["template"]["spec"]["containers"]:
            yield group["groupName"], c


def gpus(resources: dict[str, Any] | None, kind: str) -> int:
    return int((resources or {}).get(kind, {}).get("nvidia.com/gpu", 0))


def torch_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml: expected one torch==X pin, found {pins}"
    return pins[0].split("==", 1)[1].strip()


def dockerfile_ray_version() -> str:
    word, image = dockerfile_instructions(DOCKERFILE.read_text())[0]
    m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py3\d+-(gpu|cu\d+)", image.split(" AS ")[0].strip())
    assert word == "FROM" and m, f"Dockerfile: expected FROM rayproject/ray:X.Y.Z-py3NN-gpu, got {word} {image}"
    return m.group(1)


# --- cluster launcher config ----------------------------------------------------------------------------------------

def test_cluster_yaml_passes_rays_own_validation() -> None:
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    validate_config(fillout_defaults(load_yaml(CLUSTER)))  # Ray's schema and checks, with the AWS defaults merged in


def test_cluster_yaml_has_cpu_head_and_gpu_workers() -> None:
    cfg = load_yaml(CLUSTER)
    assert cfg["provider"]["type"] == "aws" and cfg["provider"].get("region")
    types = cfg["available_node_types"]
    head = cfg["head_node_type"]
    assert head in types, f"head_node_type {head!r} not in available_node_types {sorted(types)}"
    assert types[head]["resources"].get("GPU", 0) == 0, "the head node should be CPU only"
    assert not re.match(r"[gp]\d", types[head]["node_config"]["InstanceType"]), "head on a GPU instance type"

    gpu_types = {name: t for name, t in types.items() if name != head and t.get("resources", {}).get("GPU", 0) >= 1}
    assert gpu_types, "no worker node type with resources {'GPU': >= 1}"
    for name, t in gpu_types.items():
        assert re.match(r"[gp]\d", t["node_config"]["InstanceType"]), f"{name}: not a GPU instance type"
        assert t["min_workers"] == 0, f"{name}: GPU workers should scale from zero"
        assert 1 <= t["max_workers"] <= cfg["max_workers"], f"{name}: max_workers outside 1..{cfg['max_workers']}"


def test_cluster_yaml_runs_the_image_with_token_auth() -> None:
    cfg = load_yaml(CLUSTER)
    image = cfg["docker"]["image"]
    assert isinstance(image, str) and "/" in image and image.strip() == image
    assert any("RAY_AUTH_MODE=token" in opt for opt in cfg["docker"].get("run_options", [])), \
        "docker.run_options should set RAY_AUTH_MODE=token on every node"
    assert cfg["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token", \
        "the token file should reach the nodes by file_mounts"

    head = " ".join(cfg["head_start_ray_commands"])
    assert "ray start --head" in head and "--port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head and "--dashboard-host=0.0.0.0" in head
    assert "ray start --address=$RAY_HEAD_IP:6379" in " ".join(cfg["worker_start_ray_commands"])


# --- KubeRay RayJob ---------------------------------------------------------------------------------------------------

def test_rayjob_structure() -> None:
    job = load_yaml(RAYJOB)
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["mmdream", "render"] and argv[2].startswith("/app/") and argv[2].endswith(".yaml")
    assert argv[3:] == ["--address", "auto"]

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == dockerfile_ray_version(), "rayVersion differs from the image's Ray"
    assert cluster.get("authOptions", {}).get("mode") == "token", "Ray token authentication should be on"

    head = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert len(head) == 1 and gpus(head[0].get("resources"), "limits") == 0, "the head should not take a GPU"
    gpu_groups = [g for g in cluster["workerGroupSpecs"]
                  if any(gpus(c.get("resources"), "limits") >= 1 for c in g["template"]["spec"]["containers"])]
    assert gpu_groups, "no worker group whose container limits request nvidia.com/gpu"
    for group in gpu_groups:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        for c in group["template"]["spec"]["containers"]:
            res = c["resources"]
            if "nvidia.com/gpu" in res.get("requests", {}):
                assert gpus(res, "requests") == gpus(res, "limits"), "GPU requests and limits must be equal"


SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|KEY_ID|CREDENTIAL|PRIVATE", re.I)


def test_rayjob_takes_secrets_from_kubernetes_secrets_only() -> None:
    job = load_yaml(RAYJOB)
    for group, c in containers(job):
        env = {e["name"]: e for e in c.get("env", [])}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert name in env, f"{group}: {name} missing (S3 access)"
        for name, e in env.items():
            if SECRET_NAME.search(name):
                assert "value" not in e, f"{group}: {name} has a literal value; use valueFrom.secretKeyRef"
                ref = e.get("valueFrom", {}).get("secretKeyRef", {})
                assert ref.get("name") and ref.get("key"), f"{group}: {name} should come from a secretKeyRef"
        for source in c.get("envFrom", []):
            assert "configMapRef" not in source or not SECRET_NAME.search(str(source)), \
                f"{group}: secrets from a ConfigMap"


def test_one_image_everywhere() -> None:
    image = load_yaml(CLUSTER)["docker"]["image"]
    for group, c in containers(load_yaml(RAYJOB)):
        assert c["image"] == image, f"rayjob.yaml {group}: image {c['image']!r}, cluster.yaml has {image!r}"
    assert image in README.read_text(), "README should show the image name used in the configs"


# Literal credentials: AWS key ids, secret keys written out, Ray tokens written out, private keys.
CREDENTIAL_PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*[\"']?[A-Za-z0-9/+]{40}"),
    re.compile(r"RAY_AUTH_TOKEN\s*[=:]\s*[\"']?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def test_no_literal_credentials_in_infra() -> None:
    fake_id = "AKIA" + "IOSFODNN7" + "EXAMPLE"  # AWS's documented example, assembled so it appears nowhere literally
    assert CREDENTIAL_PATTERNS[0].search(f"key: {fake_id}"), "the credential scan itself is broken"
    files = [p for p in INFRA.rglob("*") if p.is_file()]
    assert {DOCKERFILE, CLUSTER, RAYJOB, README} <= set(files)
    for path in files:
        text = path.read_text()
        for pattern in CREDENTIAL_PATTERNS:
            m = pattern.search(text)
            assert m is None, f"infra/{path.relative_to(INFRA)}: looks like a literal credential near {m.group(0)[:8]}..."


# --- Dockerfile -------------------------------------------------------------------------------------------------------

def test_dockerfile_base_and_versions() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    assert instructions[0][0] == "FROM", "the first instruction of the Dockerfile should be FROM"
    assert ":latest" not in instructions[0][1], "pin the base image's tag"
    assert dockerfile_ray_version() == importlib.metadata.version("ray"), \
        "the image's Ray differs from the project's; a client and a cluster of different Ray versions do not mix"
    assert dockerfile_defaults(instructions).get("TORCH_VERSION") == torch_pin(), \
        "Dockerfile TORCH_VERSION differs from the torch pin in pyproject.toml"


def test_dockerfile_installs_cuda_torch_pinned_before_the_package() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    values = dockerfile_defaults(instructions)
    installs = [substitute(cmd, values) for cmd in pip_installs(instructions)]

    torch_lines = [i for i, cmd in enumerate(installs) if re.search(r"\btorch\b", cmd)]
    assert torch_lines, "no pip install of torch"
    for i in torch_lines:  # never a bare (latest) torch
        assert re.search(r"\btorch==\d+\.\d+\.\d+", installs[i]), f"torch not pinned: {installs[i]}"
    cuda = [i for i in torch_lines
            if re.search(r"--(extra-)?index-url[ =]\"?https://download\.pytorch\.org/whl/cu\d{3}\b", installs[i])]
    assert cuda, "torch should come from PyTorch's CUDA index (--index-url https://download.pytorch.org/whl/cuXYZ)"
    assert f"torch=={torch_pin()}" in installs[cuda[0]]

    app = [i for i, cmd in enumerate(installs) if re.search(r"/app\[cluster\]", cmd)]
    assert app, 'no pip install of "/app[cluster]"'
    assert cuda[0] < app[0], "install the CUDA torch before the package, so that its torch pin is already satisfied"
    assert not re.search(r"\s(-U|--upgrade|--force-reinstall)\b", installs[app[0]]), \
        "upgrading while installing the package could replace the CUDA torch"


def test_dockerfile_copies_repo_runs_unprivileged_and_smoke_tests() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert any(re.search(r"(^|\s)\.\s+/app/?$", rest) for rest in copies), "the repository should be copied to /app"
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the image should end on a non-root USER"
    assert any(word == "ENV" and "MMDREAM_WEIGHTS=" in rest for word, rest in instructions)
    assert any(word == "ARG" and rest.startswith("MMDREAM_WEIGHTS") for word, rest in instructions)
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(r"\bmmdream --help\b", runs) or any(w == "HEALTHCHECK" for w, _ in instructions), \
        "no smoke test of the CLI (RUN mmdream --help) or HEALTHCHECK"
    ignored = (INFRA / "Dockerfile.dockerignore").read_text().split()
    assert ".git" in ignored and any(p.startswith(".venv") for p in ignored)


# --- every `mmdream COMMAND` in infra/ exists ---------------------------------------------------------------------

def test_named_mmdream_commands_exist() -> None:
    texts = {p.name: p.read_text() for p in (DOCKERFILE, CLUSTER, RAYJOB)}
    texts[README.name] = markdown_code(README.read_text())  # prose may say "mmdream on a cluster"; code may not
    named = {name: mmdream_commands(text) for name, text in texts.items()}
    assert "render" in named[RAYJOB.name] and "submit" in named[CLUSTER.name], "the command scan itself is broken"
    known = cli_subcommands()
    missing = {name: sorted(cmds - known) for name, cmds in named.items() if cmds - known}
    assert not missing, f"infra/ names mmdream commands the CLI lacks: {missing}; CLI has {sorted(known)}"


def full_command_lines() -> list[tuple[str, str]]:
    """(file, line) for each whole `mmdream ...` command line: the RayJob entrypoint, commented commands in
    cluster.yaml, and lines of README code blocks that start with mmdream."""
    lines = [(RAYJOB.name, load_yaml(RAYJOB)["spec"]["entrypoint"])]
    for line in CLUSTER.read_text().splitlines():
        m = re.match(r"\s*#\s*(mmdream\s.*)", line)
        if m:
            lines.append((CLUSTER.name, m.group(1)))
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", README.read_text(), flags=re.S | re.M):
        lines += [(README.name, line) for line in block.splitlines() if line.startswith("mmdream ")]
    return [(name, re.sub(r"\s+#.*$", "", line).strip()) for name, line in lines]


def test_named_mmdream_command_lines_parse() -> None:
    """Each whole command line is accepted by the CLI's own parser (options and positional arguments)."""
    from mmdream.cli import build_parser

    lines = full_command_lines()
    assert any(name == CLUSTER.name for name, _ in lines), "the submit example in cluster.yaml was not found"
    bad = []
    for name, line in lines:
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            bad.append(f"{name}: {line}")
    assert not bad, f"mmdream rejects these command lines: {bad}"


def test_pyproject_declares_the_cluster_extra() -> None:
    """The image installs "/app[cluster]": the extra must exist, bring Ray, and not move Ray off the image's."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    assert "cluster" in extras, f"pyproject.toml has no [cluster] extra (has {sorted(extras)}); the image installs it"
    ray_reqs = [r for r in extras["cluster"] if re.match(r"ray\b", r)]
    assert ray_reqs, "the [cluster] extra should require ray[default]"
    for req in ray_reqs:
        pins = re.findall(r"==\s*([\d.]+)", req)
        assert all(pin == dockerfile_ray_version() for pin in pins), f"{req} differs from the image's Ray"


def test_rayjob_job_spec_is_in_the_image() -> None:
    """The entrypoint's /app/... path is the repository's file of that name (the Dockerfile copies the repo to /app)."""
    path = shlex.split(load_yaml(RAYJOB)["spec"]["entrypoint"])[2]
    local = ROOT / Path(path).relative_to("/app")
    assert local.is_file(), f"rayjob.yaml runs {path}, but the repository has no {local.relative_to(ROOT)}"


@pytest.mark.parametrize("text, expected", [
    ("mmdream submit jobs/x.yaml --address http://HEAD:8265", {"submit"}),
    ("image: ghcr.io/OWNER/mmdream:latest\nname: mmdream-s3\nimport mmdream, torch", set()),
    ("RUN mmdream --help && `mmdream render a.yaml`", {"render"}),
])
def test_command_scan(text: str, expected: set[str]) -> None:
    assert mmdream_commands(text) == expected
