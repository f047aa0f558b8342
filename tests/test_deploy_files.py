"""The files users deploy with stay valid (no Docker engine runs here, so they are checked as data)."""

from __future__ import annotations

import yaml

from bench import mariadb_settings
from core.settings import DEVELOPMENT_SECRETS, OPTIONAL_GATEWAY_SECRETS
from ops.run import procfile
from ops.stack import ROOT
from tests.harness import MariaDB


def test_compose_runs_every_procfile_process_with_the_same_program():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mariadb", "redis"} <= set(services)
    for name, command in procfile():
        assert name in services, name
        declared = services[name]["command"]
        program = declared if isinstance(declared, str) else " ".join(declared)
        assert command.split()[0] in program, (name, program)
        if name != "mail":
            assert services[name]["environment"]["DATABASE_URL"].startswith("mysql+asyncmy://")
    sources = {volume.split(":")[1]: volume.split(":")[0] for volume in services["mariadb"]["volumes"]}
    assert sources["/etc/mysql/conf.d/loket.cnf"] == "./ops/mariadb/loket.cnf"


def test_compose_migrates_the_schema_once_before_any_process_starts():
    """The schema comes from `alembic upgrade head` in a one-shot service, never from MariaDB's initdb
    (which runs on an empty volume only, so an upgraded image would never migrate)."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "-m", "db.apply"]
    assert migrate["restart"] == "no" and migrate["build"] == "."
    assert migrate["environment"]["DATABASE_URL"] == services["web"]["environment"]["DATABASE_URL"]
    assert migrate["depends_on"] == {"mariadb": {"condition": "service_healthy"}}
    for name, _ in procfile():
        if name in ("sim", "mail"):
            continue  # neither touches the database
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert not [volume for volume in services["mariadb"]["volumes"] if "initdb" in volume]


def test_the_mariadb_settings_parse_name_real_variables_and_keep_every_commit_durable(db: MariaDB):
    """ops/mariadb/loket.cnf, as MariaDB reads it in compose and as the benchmark applies it."""
    settings = mariadb_settings.recommended()
    assert settings["innodb_buffer_pool_size"] == settings["innodb_log_file_size"] == 1 << 30
    assert settings["innodb_flush_log_at_trx_commit"] == 1 and settings["innodb_doublewrite"] == 1
    known = db.rows(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({', '.join(['%s'] * len(settings))})", *settings)
    assert {row["Variable_name"] for row in known} == set(settings)


def test_procfile_names_the_processes_of_the_design():
    assert [name for name, _ in procfile()] == ["web", "worker", "qris_worker", "webhook_worker", "callback_worker", "clock", "sim", "mail"]


def test_compose_requires_every_production_secret_and_carries_no_development_value():
    """`${VAR:?}`: compose stops before starting anything when a secret is missing."""
    text = (ROOT / "docker-compose.yml").read_text()
    env = yaml.safe_load(text)["services"]["web"]["environment"]
    for variable in set(DEVELOPMENT_SECRETS) - set(OPTIONAL_GATEWAY_SECRETS):
        assert env[variable].startswith(f"${{{variable}:?"), (variable, env.get(variable))
    assert env["LOKET_ENV"] == "${LOKET_ENV:-production}"
    assert not [value for value in DEVELOPMENT_SECRETS.values() if value in text]
