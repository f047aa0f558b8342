"""What is installed is what the lock names, and the image carries Loket's runtime and nothing else.

No Docker engine runs here: the Dockerfile is checked as data (dockerfile-parse), the lock with uv
offline, and the imports of the code against the declared dependencies."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser
from packaging.markers import Marker

from ops.run import procfile

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"
RUNTIME_PACKAGES = ["core", "db", "domain", "jobs", "ops", "provider", "sim", "web", "workers"]
DEV_PACKAGES = ["tests", "bench"]
# Declared, never imported by name: each is picked up by the library that names it.
USED_WITHOUT_IMPORT = {
    "uvloop": "uvicorn --loop uvloop (web.serve)",
    "httptools": "uvicorn --http httptools (web.serve)",
    "hiredis": "redis-py's reply parser when installed",
    "uv": "make lock",
    "ruff": "make lint",
    "mypy": "make lint",
    "types-pymysql": "mypy, for db.apply's pymysql calls",
    "pytest-asyncio": "pytest's plugin (pytest.ini asyncio_mode)",
    "swagger-ui-py": "its static files, found with importlib (web.docs)",
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~! ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(packages: list[str]) -> set[str]:
    """Top-level modules imported by the .py files of packages, standard library and Loket's own left out."""
    own = set(RUNTIME_PACKAGES + DEV_PACKAGES)
    found: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in own and name != "__future__"}


def _distributions(modules: set[str]) -> set[str]:
    mapping = packages_distributions()
    return {dist.lower().replace("_", "-") for module in modules for dist in mapping.get(module, [module])}


LOCKED = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)(?: ; ([^\\\n]+))? \\$", re.M)


def _locked(requirements: str) -> dict[str, str]:
    """name -> version of each entry whose environment marker holds here."""
    return {m[1].lower(): m[2] for m in LOCKED.finditer(requirements) if not m[3] or Marker(m[3]).evaluate()}


def test_the_lock_matches_pyproject_and_the_requirement_files_are_its_exports():
    check = subprocess.run([UV, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    for target, flags in (("requirements.txt", ["--no-dev"]), ("requirements-dev.txt", ["--all-groups"])):
        command = [UV, "export", "--quiet", "--frozen", *flags, "--no-emit-project", "--format", "requirements-txt", "-o", target]
        exported = subprocess.run([*command[:-2], "--no-header"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        on_disk = (ROOT / target).read_text()
        assert on_disk.split("\n", 2)[2] == exported, f"{target} is not the export of uv.lock: run `make lock`"


def test_every_locked_package_is_pinned_and_hash_checked():
    for target in ("requirements.txt", "requirements-dev.txt"):
        text = (ROOT / target).read_text()
        entries = [block for block in re.split(r"\n(?=\S)", text) if block and not block.startswith("#")]
        assert entries
        for entry in entries:
            assert LOCKED.match(entry) and "--hash=sha256:" in entry, entry
    runtime, dev = (_locked((ROOT / name).read_text()) for name in ("requirements.txt", "requirements-dev.txt"))
    assert runtime.items() <= dev.items()
    assert not {"pytest", "ruff", "schemathesis", "hypothesis", "uv"} & set(runtime)


def test_the_installed_environment_is_the_lock():
    """`make venv` installs with --require-hashes --no-deps: every package the lock names, at its version."""
    from importlib.metadata import distributions

    installed = {dist.metadata["Name"].lower().replace("_", "-"): dist.version for dist in distributions()}
    for name, version in _locked((ROOT / "requirements-dev.txt").read_text()).items():
        assert installed.get(name.replace("_", "-")) == version, (name, version, installed.get(name))


def test_the_runtime_imports_only_runtime_dependencies_and_every_declared_one_is_used():
    project = _pyproject()
    runtime = {_name(r) for r in project["project"]["dependencies"]}
    dev = {_name(r) for r in project["dependency-groups"]["dev"]}
    locked_runtime = set(_locked((ROOT / "requirements.txt").read_text()))
    runtime_imports = _distributions(_third_party_imports(RUNTIME_PACKAGES))
    assert runtime_imports <= locked_runtime, runtime_imports - locked_runtime
    dev_imports = _distributions(_third_party_imports(DEV_PACKAGES))
    unused = (runtime | dev) - runtime_imports - dev_imports - set(USED_WITHOUT_IMPORT)
    assert not unused, f"declared and never imported: {unused}"
    assert "fakeredis" not in (ROOT / "requirements-dev.txt").read_text()


def _dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(ROOT / "Dockerfile").open("rb"))
    return parser


def _final_stage(parser: DockerfileParser) -> list[dict]:
    instructions = parser.structure
    last_from = max(i for i, item in enumerate(instructions) if item["instruction"] == "FROM")
    return instructions[last_from:]


def test_the_image_is_multi_stage_on_a_pinned_base_and_runs_unprivileged():
    parser = _dockerfile()
    first = next(item for item in parser.structure if item["instruction"] != "COMMENT")
    assert first["instruction"] == "ARG" and first["value"].startswith("PYTHON_IMAGE=")
    base = first["value"].split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    froms = [item["value"] for item in parser.structure if item["instruction"] == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    final = _final_stage(parser)
    users = [item["value"] for item in final if item["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    after_user = final[[item["instruction"] for item in final].index("USER") :]
    assert not [item for item in after_user if item["instruction"] in ("RUN", "COPY", "ADD")]
    installs = [item["value"] for item in parser.structure if item["instruction"] == "RUN" and "pip install" in item["value"]]
    assert installs and all("--require-hashes" in run and "--no-deps" in run and "requirements.txt" in run for run in installs)
    assert not [item for item in final if item["instruction"] == "RUN" and "pip" in item["value"]]


def test_the_image_carries_the_runtime_only_and_starts_the_procfile_web():
    parser = _dockerfile()
    final = _final_stage(parser)
    copied = [shlex.split(item["value"]) for item in final if item["instruction"] == "COPY"]
    sources = {source for args in copied if not args[0].startswith("--from") for source in args[:-1]}
    assert sources == {*RUNTIME_PACKAGES, "alembic.ini", "schema.sql", "procedures.sql", "Procfile"}
    assert all((ROOT / source).exists() for source in sources)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", "bench", ".venv", ".git", ".env"} <= set(ignored)
    cmd = next(item["value"] for item in final if item["instruction"] == "CMD")
    assert " ".join(yaml.safe_load(cmd)) == dict(procfile())["web"]
    healthcheck = next(item["value"] for item in final if item["instruction"] == "HEALTHCHECK")
    assert "/health" in healthcheck and "--interval=" in healthcheck
    # the check's own Python runs as written (the URL it builds is the web's /health)
    program = yaml.safe_load(healthcheck.split("CMD", 1)[1].strip())
    assert program[:2] == ["python", "-c"]
    compile(program[2], "HEALTHCHECK", "exec")


def test_compose_keeps_the_health_check_for_the_web_only_and_grafana_behind_a_password():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, _ in procfile():
        check = services[name].get("healthcheck", {})
        assert bool(check.get("disable")) == (name != "web"), (name, check)
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
