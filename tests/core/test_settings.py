from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from danlu.core.errors import ConfigError
from danlu.core.settings import SPECS, Settings, load_settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_declared_once_with_help() -> None:
    assert [s.name for s in SPECS] == [f.name for f in fields(Settings)]
    assert all(spec.help.endswith(".") for spec in SPECS)


def test_defaults_match_the_declaration() -> None:
    settings = load_settings({})
    for spec in SPECS:
        expected = spec.default.expanduser() if isinstance(spec.default, Path) else spec.default
        assert getattr(settings, spec.name) == expected


def test_environment_and_overrides(tmp_path: Path) -> None:
    env = {"DANLU_HOME": str(tmp_path), "DANLU_PORT": "9001", "DANLU_EMBEDDED_MODELS": "off"}
    settings = load_settings(env, port=None, host="0.0.0.0")
    assert settings.home == tmp_path and settings.port == 9001
    assert settings.host == "0.0.0.0" and settings.embedded_models is False
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'danlu.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DANLU_PORT", "eighty", "DANLU_PORT"),
        ("DANLU_PORT", "70000", "port"),
        ("DANLU_EMBEDDED_MODELS", "maybe", "DANLU_EMBEDDED_MODELS"),
        ("DANLU_LOG_LEVEL", "loud", "DANLU_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings({variable: value})


def test_database_password_is_hidden_in_descriptions() -> None:
    settings = load_settings({"DANLU_DATABASE_URL": "postgresql+psycopg://u:hunter2pw@db/x"})
    assert "hunter2pw" not in str(settings.describe())
    assert "admin_password" in settings.describe()


def test_settings_doc_is_generated_from_the_declaration() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: run `danlu doctor --settings-markdown > docs/settings.md`"
    )
