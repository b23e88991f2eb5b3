"""Settings: one declaration per variable, each function reads only its own, bad values are named."""

from __future__ import annotations

import dataclasses

import pytest

from core.settings import (
    FUNCTION_SETTINGS,
    VARIABLES,
    ArchiverSettings,
    AuthorizerSettings,
    FromEnv,
    IngestSettings,
    RollupSettings,
    SettingsError,
    WorkerSettings,
)

INGEST_RESOURCES = {"QUEUE_URL": "q", "STREAM_NAME": "s"}


def test_settings_defaults_are_the_design_limits() -> None:
    s = IngestSettings.from_env(INGEST_RESOURCES)
    assert (s.max_body_bytes, s.max_decompressed_bytes, s.max_records, s.max_record_bytes, s.max_depth) == (
        1024 * 1024,
        10 * 1024 * 1024,
        1000,
        256 * 1024,
        64,
    )


@pytest.mark.parametrize(
    ("cls", "env", "name"),
    [
        (IngestSettings, {**INGEST_RESOURCES, "MAX_RECORDS": "many"}, "MAX_RECORDS"),
        (IngestSettings, {**INGEST_RESOURCES, "MAX_RECORDS": "0"}, "MAX_RECORDS"),
        (IngestSettings, {**INGEST_RESOURCES, "AUTH_MODE": "magic"}, "AUTH_MODE"),
        (WorkerSettings, {"TABLE_NAME": "t", "REDACT_IP_ADDRESSES": "perhaps"}, "REDACT_IP_ADDRESSES"),
        (IngestSettings, {**INGEST_RESOURCES, "DEFAULT_TENANT": "bad tenant"}, "DEFAULT_TENANT"),
        (IngestSettings, {**INGEST_RESOURCES, "DEFAULT_TENANT": "acme\n"}, "DEFAULT_TENANT"),
        (
            IngestSettings,
            {**INGEST_RESOURCES, "MAX_BODY_BYTES": "100", "MAX_DECOMPRESSED_BYTES": "10"},
            "MAX_DECOMPRESSED_BYTES",
        ),
        (WorkerSettings, {"TABLE_NAME": "t", "STORE_BUDGET_SECONDS": "0"}, "STORE_BUDGET_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(cls: type[FromEnv], env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        cls.from_env(env)


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (IngestSettings, "QUEUE_URL, STREAM_NAME"),
        (AuthorizerSettings, "API_KEYS_TABLE_NAME"),
        (WorkerSettings, "TABLE_NAME"),
        (ArchiverSettings, "ARCHIVE_BUCKET"),
        (RollupSettings, "ROLLUP_TABLE_NAME"),
    ],
)
def test_require_names_missing_resources(cls: type[FromEnv], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        cls.from_env({})


def test_each_function_reads_only_its_variables_with_the_declared_types() -> None:
    # GIVEN every variable set to a valid non-default value
    env = {
        v.name: v.choices[-1]
        if v.choices
        else {bool: "true", int: "7", float: "2.5", str: "x"}[type(v.default)]
        for v in VARIABLES.values()
    }
    env["DEFAULT_TENANT"] = "acme"
    env["MAX_DECOMPRESSED_BYTES"] = "7"
    for cls in FUNCTION_SETTINGS:
        s = cls.from_env(env)
        for f in dataclasses.fields(s):  # type: ignore[arg-type]
            value = getattr(s, f.name)
            # THEN each field has its variable's type, as its class annotation says
            assert type(value) is type(VARIABLES[f.name].default), f.name
            assert f.type == type(value).__name__, f.name
    worker = WorkerSettings.from_env({"TABLE_NAME": "events"})
    assert (worker.table_name, worker.retention_days, worker.store_compact) == ("events", 30, True)
    assert not hasattr(worker, "queue_url")
