"""The deployment examples are kept true: each parses, and every command and setting they use
exists (examples/deploy/ and .env.example)."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest
import yaml

from bot.cli.main import build_parser
from bot.config import PREFIX, Settings
from handlers.i18n import translator
from tests.conftest import ROOT

DEPLOY = ROOT / "examples" / "deploy"
SETTINGS = {PREFIX + name.upper() for name in Settings.model_fields}


def parses(argv: list[str]) -> None:
    """The ykien command line accepts argv as a command that runs (not a group alone)."""
    assert argv[0].endswith("ykien"), argv
    args = build_parser(translator("en")).parse_args(argv[1:])
    assert args.handler is not None, argv


def compose() -> dict:
    with (DEPLOY / "compose.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_compose_runs_postgres_two_servers_a_worker_and_caddy():
    services = compose()["services"]
    assert {"db", "migrate", "serve1", "serve2", "worker", "caddy"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert services["caddy"]["image"].startswith("caddy:")
    commands = {name: service["command"] for name, service in services.items()
                if "command" in service}
    assert commands["serve1"][:2] == ["ykien", "serve"] == commands["serve2"][:2]
    assert commands["worker"] == ["ykien", "worker"]
    assert commands["migrate"] == ["ykien", "db", "upgrade"]
    for command in commands.values():
        parses(command)
    for name in ("serve1", "serve2", "worker", "migrate"):
        environment = services[name]["environment"]
        assert set(environment) <= SETTINGS, environment
        assert environment["YKIEN_DATABASE_URL"].startswith("postgresql+asyncpg://")
        dockerfile = services[name]["build"]["dockerfile"]
        assert (ROOT / dockerfile).is_file()


def test_the_caddyfile_proxies_to_the_servers_of_compose():
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    ports = {name: service["command"][-1] for name, service in compose()["services"].items()
             if name.startswith("serve")}
    for name, port in ports.items():
        assert f"{name}:{port}" in caddyfile
    assert "health_uri /healthz" in caddyfile and "/telegram/*" in caddyfile


def test_the_dockerfile_copies_what_exists_and_installs_the_command():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in line.split():
            assert (ROOT / path).exists(), path
    parses(shlex.split(re.search(r'^CMD \["(.+)"\]$', dockerfile, re.M)[1].replace('", "', " ")))


@pytest.mark.parametrize("unit", ["ykien-serve@.service", "ykien-worker.service"])
def test_each_systemd_unit_parses_and_runs_a_real_command(unit):
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(DEPLOY / unit, encoding="utf-8")
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    for key in ("ExecStart", "ExecStartPre"):
        if key in service:
            parses(shlex.split(service[key].replace("%i", "8080")))
    assert service["EnvironmentFile"].startswith("/etc/ykien/")
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"


def test_env_example_names_every_setting_and_only_settings():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^(YKIEN_[A-Z0-9_]+)=", text, re.M))
    assert named == SETTINGS
