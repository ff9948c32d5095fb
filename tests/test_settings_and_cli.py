"""Configuration errors read as sentences, and the CLI's fixed commands exist."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.settings import ConfigError, Settings

KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def test_no_credentials_means_dev_mode_on_sqlite(tmp_path: Path) -> None:
    s = Settings.from_env({"JASTIPIN_DATA_DIR": str(tmp_path)})
    assert s.dev_mode
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/jastipin.db"
    assert s.port == 8000
    # media sent from the simulator is downloaded from the API's own Graph stand-in
    assert s.wa_api_base == "http://127.0.0.1:8000/dev/graph"
    # a dev key is generated once and kept, so encrypted phones stay readable
    assert Settings.from_env({"JASTIPIN_DATA_DIR": str(tmp_path)}).pii_key == s.pii_key


def test_a_token_without_the_app_secret_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="WA_APP_SECRET"):
        Settings.from_env({"WA_ACCESS_TOKEN": "x", "WA_PHONE_ID": "1"})


def test_live_mode_needs_the_pii_key() -> None:
    env = {
        "WA_ACCESS_TOKEN": "x",
        "WA_APP_SECRET": "y",
        "WA_PHONE_ID": "1",
        "WA_VERIFY_TOKEN": "v",
    }
    with pytest.raises(ConfigError, match="PII_ENCRYPTION_KEY"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="32 random bytes"):
        Settings.from_env({**env, "PII_ENCRYPTION_KEY": "short"})
    s = Settings.from_env({**env, "PII_ENCRYPTION_KEY": KEY})
    assert not s.dev_mode


def test_deployment_document_names_and_aliases() -> None:
    s = Settings.from_env(
        {
            "JASTIPIN_DATA_DIR": "/tmp/jastipin-settings-test",
            "DATABASE_URL": "postgres://u@db:5432/app",
            "BULLMQ_PREFIX": "jp",
            "BULLMQ_CONCURRENCY": "7",
            "CF_R2_ACCOUNT_ID": "acc",
            "WA_API_BASE": "http://127.0.0.1:9999/",
        }
    )
    assert s.database_url == "postgresql+asyncpg://u@db:5432/app"
    assert s.queue_prefix == "jp" and s.worker_concurrency == 7
    assert s.s3_endpoint_url == "https://acc.r2.cloudflarestorage.com"
    assert s.wa_api_base == "http://127.0.0.1:9999"
    with pytest.raises(ConfigError, match="PORT"):
        Settings.from_env({"JASTIPIN_DATA_DIR": "/tmp/jastipin-settings-test", "PORT": "eighty"})


def test_the_numbers_cap_keeps_room_for_replies(tmp_path: Path) -> None:
    """Replies and broadcasts share BROADCAST_NUMBER_CAP; broadcasts leave a reserve."""
    base = {"JASTIPIN_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).reply_reserve == 8  # a tenth of the default 80
    assert Settings.from_env({**base, "BROADCAST_NUMBER_CAP": "1000"}).reply_reserve == 10
    s = Settings.from_env({**base, "BROADCAST_NUMBER_CAP": "20", "BROADCAST_REPLY_RESERVE": "5"})
    assert (s.broadcast_number_cap, s.reply_reserve) == (20, 5)
    # a reserve of the whole cap would never let a broadcast out: refused, with why
    with pytest.raises(ConfigError, match="less than BROADCAST_NUMBER_CAP"):
        Settings.from_env({**base, "BROADCAST_NUMBER_CAP": "20", "BROADCAST_REPLY_RESERVE": "20"})


def test_the_cli_explains_a_bad_configuration_instead_of_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_")}
    env.update(
        {
            "WA_ACCESS_TOKEN": "tok-SECRET-123",
            "WA_PHONE_ID": "1",
            "JASTIPIN_DATA_DIR": str(tmp_path),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "WA_APP_SECRET" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "tok-SECRET-123" not in proc.stderr, "a secret value leaked into the message"


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["worker"],
        ["scheduler"],
        ["db", "upgrade"],
        ["chat", "--phone", "6281234567890"],
        ["admin", "create-user", "--email", "a@b.c"],
        ["jastiper", "add", "--phone", "6281", "--name", "Tina"],
        ["demo"],
    ],
)
def test_the_fixed_cli_commands_exist(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.func)
