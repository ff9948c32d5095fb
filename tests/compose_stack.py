"""docker-compose.yml, started as ``docker compose up`` starts it, with the engine's own
client: these machines have Debian's ``docker.io`` but neither the compose plugin nor a
compose that reads this file (Debian's ``docker-compose`` 1.29 predates the top-level
``name`` and secrets taken from the environment). So the file itself is read — its
interpolation (``${VAR:-default}``, ``${VAR:?message}`` from ``.env``), services,
profiles, environment, ``env_file``, commands, healthchecks, ``depends_on`` conditions,
ports, volumes, secrets, users and stop grace periods — and each service becomes a
``docker run`` on the project's network under its service name, in dependency order. What
the test changes is said where it is given: which local image stands in for a registry
image, which service is not started and why, and the environment a service gets on top
(what an override file would say).

``exec`` and ``run`` do what ``docker compose exec`` / ``docker compose run --rm`` do, so
that the runbook's commands can be run as written (tests/test_compose_stack.py)."""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.images import docker

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"


class MissingVariable(Exception):
    """``${VAR:?message}`` with VAR unset or empty: compose stops with the message."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$`` is a dollar; ``${VAR}``, ``$VAR``,
    ``${VAR:-default}`` / ``${VAR-default}`` (defaults may nest), ``${VAR:?message}`` /
    ``${VAR?message}``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise ValueError(f"unclosed ${{ in {text!r}")
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_substitute(text[i + 2 : j - 1], env))
            i = j
            continue
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1 :])
        if name is None:
            out.append(char)
            i += 1
            continue
        out.append(env.get(name.group(0), ""))
        i += 1 + len(name.group(0))
    return "".join(out)


def _substitute(inner: str, env: Mapping[str, str]) -> str:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])(.*))?$", inner, re.S)
    if match is None:
        raise ValueError(f"not a variable: ${{{inner}}}")
    name, colon, op, rest = match.groups()
    value = env.get(name)
    unset = value is None or (colon == ":" and value == "")
    if op == "-":
        return interpolate(rest, env) if unset else str(value)
    if op == "?":
        if unset:
            raise MissingVariable(f"{name}: {interpolate(rest, env)}")
        return str(value)
    return value or ""


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def load(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with its anchors merged and its variables substituted."""
    return dict(_interpolated(yaml.safe_load(path.read_text()), env))


def seconds(duration: str | int | float) -> float:
    """``45s``, ``1m30s``, ``500ms`` (compose's durations) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def _environment(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {key: v for key, _, v in pairs}
    return {key: "" if v is None else str(v) for key, v in (value or {}).items()}


def _env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip().strip("'\"")
    return out


@dataclass
class ComposeStack:
    """One project of docker-compose.yml on this engine.

    Args:
        workdir: where ``.env`` and the secrets' files are written.
        dotenv: the ``.env`` beside the compose file (interpolation and ``env_file``).
        images: registry image (as the compose file names it) → local image.
        not_started: service → why it is not started (dependencies on it are dropped).
        extra_env: service → variables on top of what compose gives it.
        binds: a bind mount's source as the file writes it → the directory used instead.
        profiles: the profiles ``--profile`` would enable.
    """

    workdir: Path
    dotenv: dict[str, str]
    images: dict[str, str]
    not_started: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    binds: dict[str, Path] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    project: str = field(default_factory=lambda: f"jpstack{secrets.token_hex(3)}")
    containers: dict[str, str] = field(default_factory=dict)
    _spec: dict[str, Any] | None = None
    _network_made: bool = False

    # --- the file -------------------------------------------------------------------

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            (self.workdir / ".env").write_text(
                "".join(f"{key}={value}\n" for key, value in self.dotenv.items())
            )
            self._spec = load(self.dotenv)
        return self._spec

    def selected(self) -> list[str]:
        """The services ``up`` starts: those of no profile or of an enabled one, but for
        the ones not started here."""
        return [
            name
            for name, service in self.spec["services"].items()
            if (not service.get("profiles") or set(service["profiles"]) & set(self.profiles))
            and name not in self.not_started
        ]

    def _depends(self, name: str) -> dict[str, str]:
        raw = self.spec["services"][name].get("depends_on") or {}
        if isinstance(raw, list):
            raw = {dep: {"condition": "service_started"} for dep in raw}
        return {
            dep: cond.get("condition", "service_started")
            for dep, cond in raw.items()
            if dep not in self.not_started
        }

    def _order(self, names: list[str]) -> list[str]:
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            assert name not in path, f"a dependency cycle: {path}"
            if name in done:
                return
            for dep in self._depends(name):
                visit(dep, (*path, name))
            done.append(name)

        for name in names:
            visit(name, ())
        return done

    def env_of(self, name: str) -> dict[str, str]:
        """What the container's environment gets: ``env_file``, then ``environment``,
        then the test's additions."""
        service = self.spec["services"][name]
        env: dict[str, str] = {}
        files = service.get("env_file") or []
        for entry in [files] if isinstance(files, str) else files:
            path = entry if isinstance(entry, str) else entry["path"]
            env.update(_env_file(self.workdir / path if path == ".env" else ROOT / path))
        env.update(_environment(service.get("environment")))
        env.update(self.extra_env.get(name, {}))
        return env

    def _image(self, name: str) -> str:
        image = str(self.spec["services"][name]["image"])
        return self.images.get(image, image)

    def _volumes(self, name: str) -> list[str]:
        args: list[str] = []
        for entry in self.spec["services"][name].get("volumes") or []:
            source, _, rest = str(entry).partition(":")
            if source.startswith((".", "/")):
                path = self.binds.get(source) or (ROOT / source).resolve()
                args += ["-v", f"{path}:{rest}"]
            else:
                args += ["-v", f"{self.project}_{source}:{rest}"]
        for entry in self.spec["services"][name].get("secrets") or []:
            source = entry if isinstance(entry, str) else entry["source"]
            target = source if isinstance(entry, str) else entry.get("target", source)
            if not target.startswith("/"):
                target = f"/run/secrets/{target}"
            definition = self.spec["secrets"][source]
            if "environment" in definition:
                path = self.workdir / "secrets" / source
                path.parent.mkdir(exist_ok=True)
                path.write_text(self.dotenv.get(definition["environment"], ""))
                path.chmod(0o644)  # read by the service's own user
            else:
                path = (ROOT / definition["file"]).resolve()
            args += ["-v", f"{path}:{target}:ro"]
        return args

    def _healthcheck(self, name: str) -> list[str]:
        check = self.spec["services"][name].get("healthcheck")
        if not check:
            return []
        if check.get("disable"):
            return ["--no-healthcheck"]
        test = check["test"]
        if isinstance(test, list):
            kind, *argv = test
            cmd = argv[0] if kind == "CMD-SHELL" else shlex.join(argv)
        else:
            cmd = test
        args = ["--health-cmd", cmd]
        for key, flag in (("interval", "--health-interval"), ("timeout", "--health-timeout")):
            if key in check:
                args += [flag, f"{seconds(check[key])}s"]
        if "retries" in check:
            args += ["--health-retries", str(check["retries"])]
        return args

    def _run_args(
        self, name: str, env: Mapping[str, str] | None = None, *, alias: bool = True
    ) -> list[str]:
        service = self.spec["services"][name]
        args = ["--network", self.network]
        if alias:  # `docker compose run` leaves the service's name to the service
            args += ["--network-alias", name]
        args += ["--label", f"com.docker.compose.project={self.project}"]
        for key, value in {**self.env_of(name), **(env or {})}.items():
            args += ["-e", f"{key}={value}"]
        if "user" in service:
            args += ["--user", str(service["user"])]
        if "stop_grace_period" in service:
            args += ["--stop-timeout", str(int(seconds(service["stop_grace_period"])))]
        args += self._volumes(name) + self._healthcheck(name)
        return args

    def _command(self, name: str, argv: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
        """(``--entrypoint`` arguments, the command) for a service."""
        service = self.spec["services"][name]
        entry: list[str] = []
        command = list(argv) or service.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        if service.get("entrypoint"):
            first, *rest = service["entrypoint"]
            entry = ["--entrypoint", first]
            command = [*rest, *command]
        return entry, command

    # --- up, exec, run, stop, down ---------------------------------------------------

    def make_network(self) -> str:
        """The project's network (made once); returns its gateway, the host's address on
        it (where the containers reach a server of the test)."""
        if not self._network_made:
            docker("network", "create", self.network)
            self._network_made = True
        return docker(
            "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", self.network
        ).strip()

    def up(self, within: float = 300) -> None:
        """Start the selected services in dependency order, each once what it depends on
        is healthy, started or completed successfully."""
        self.make_network()
        for name in self._order(self.selected()):
            for dep, condition in self._depends(name).items():
                self.wait(dep, condition, within)
            self.start(name)

    def start(self, name: str) -> None:
        service = self.spec["services"][name]
        container = f"{self.project}-{name}-1"
        entry, command = self._command(name)
        ports: list[str] = []
        for port in service.get("ports") or []:
            ports += ["-p", str(port)]
        self.containers[name] = container  # removed by down() even if it never started
        docker(
            "run",
            "-d",
            "--name",
            container,
            *self._run_args(name),
            *ports,
            *entry,
            self._image(name),
            *command,
            timeout=120,
        )

    def wait(self, name: str, condition: str, within: float) -> None:
        container = self.containers[name]
        deadline = time.monotonic() + within
        if condition == "service_completed_successfully":
            code = docker("wait", container, timeout=within).strip()
            assert code == "0", f"{name} exited {code}:\n{self.logs(name)}"
            return
        if condition != "service_healthy":
            return
        while True:
            state = docker(
                "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", container
            ).split()
            if state[-1] == "healthy":
                return
            if state[0] == "exited" or time.monotonic() > deadline:
                raise AssertionError(f"{name} is {' '.join(state)}:\n{self.logs(name)}")
            time.sleep(1)

    def exec(
        self,
        name: str,
        *argv: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose exec [-T] [-e K=V] <name> argv…``."""
        args = ["exec", *(["-i"] if stdin is not None else [])]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return subprocess.run(
            ["docker", *args, self.containers[name], *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(
        self,
        name: str,
        *argv: str,
        env: Mapping[str, str] | None = None,
        entrypoint: str | None = None,
        shipped: bool = False,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm --no-deps [-e K=V] [--entrypoint X] <name> [argv…]``
        (what it depends on is up already): the service's container without its ports,
        removed after. ``shipped``: with the bind mounts the file names, not the test's
        replacements."""
        entry, command = self._command(name, argv)
        if entrypoint is not None:
            entry = ["--entrypoint", entrypoint]
        binds, self.binds = self.binds, ({} if shipped else self.binds)
        try:
            args = self._run_args(name, env, alias=False)
        finally:
            self.binds = binds
        container = f"{self.project}-{name}-run-{secrets.token_hex(3)}"
        image = self._image(name)
        return subprocess.run(
            ["docker", "run", "--rm", "--name", container, *args, *entry, image, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self, name: str) -> int:
        """``docker compose stop <name>`` (SIGTERM, SIGKILL after the grace period);
        returns the exit code."""
        docker("stop", self.containers[name], timeout=120)
        return int(docker("inspect", "-f", "{{.State.ExitCode}}", self.containers[name]))

    def logs(self, name: str) -> str:
        done = subprocess.run(
            ["docker", "logs", "--tail", "60", self.containers[name]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout + done.stderr

    def down(self) -> None:
        """``docker compose down -v``: containers, the network and the named volumes."""
        for container in self.containers.values():
            docker("rm", "-f", "-v", container, check=False, timeout=120)
        if self._network_made:
            docker("network", "rm", self.network, check=False, timeout=60)
        for volume in self.spec.get("volumes") or {}:
            docker("volume", "rm", f"{self.project}_{volume}", check=False, timeout=60)
