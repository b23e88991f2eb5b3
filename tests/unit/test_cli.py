"""The `sluice` CLI's pure parts: escaping for the terminal, finding the stack (state dir, outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.terminal import safe
from local import cli

TF_OUTPUTS = {
    "api_url": {
        "value": "https://abc.execute-api.eu-west-1.amazonaws.com/",
        "type": "string",
        "sensitive": False,
    },
    "queue_url": {"value": "https://sqs.eu-west-1.amazonaws.com/1/sluice-dev-events", "type": "string"},
    "dlq_url": {"value": "https://sqs.eu-west-1.amazonaws.com/1/sluice-dev-events-dlq", "type": "string"},
    "stream_name": {"value": "sluice-dev-events", "type": "string"},
    "table_name": {"value": "sluice-dev-events", "type": "string"},
    "rollup_table_name": {"value": "sluice-dev-rollup", "type": "string"},
    "api_keys_table_name": {"value": "sluice-dev-api-keys", "type": "string"},
    "archive_bucket": {"value": "sluice-dev-archive-1-eu-west-1", "type": "string"},
    "region": {"value": "eu-west-1", "type": "string"},
}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcode", "plain text, ünïcode"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("bell\x07 cr\r nul\x00 del\x7f", "bell\\x07 cr\\x0d nul\\x00 del\\x7f"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("bidi \u202eevil", "bidi \\u202eevil"),
        ("tab\tnewline\n", "tab\\x09newline\\x0a"),
    ],
)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert safe(raw) == shown


def test_the_deployment_is_read_from_terraform_outputs() -> None:
    stack = cli.stack_from_outputs(TF_OUTPUTS)
    assert stack.queue_url.endswith("sluice-dev-events") and stack.dlq_url.endswith("-dlq")
    assert stack.region == "eu-west-1" and stack.api_keys_table_name == "sluice-dev-api-keys"
    assert stack.endpoint_url == "" and stack.api_url.startswith("https://abc.")
    # plain {name: value} works too (a hand-written file)
    plain = {k: v["value"] for k, v in TF_OUTPUTS.items()}
    assert cli.stack_from_outputs(plain) == stack


def test_outputs_of_another_module_are_refused() -> None:
    with pytest.raises(ValueError, match="queue_url"):
        cli.stack_from_outputs({"vpc_id": {"value": "vpc-1"}})


def test_the_state_dir_does_not_depend_on_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SLUICE_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.default_state_dir() == cli.REPO / ".local"
    monkeypatch.setenv("SLUICE_STATE_DIR", str(tmp_path / "s"))
    assert cli.build_parser().parse_args(["stats"]).state_dir == tmp_path / "s"


def test_no_local_stack_says_how_to_reach_a_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "stats"]) == 2
    out = capsys.readouterr().out
    assert "no local stack found" in out and "--deployment" in out


def test_deployment_reads_terraform_output_of_infra_in_the_chosen_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a terraform on PATH that answers `output -json` for the workspace it is run in
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *"output -json"*) ;; *) exit 9 ;; esac\n'
        'w="${TF_WORKSPACE:-default}"\n'
        'printf \'{"queue_url":{"value":"q-%s"},"dlq_url":{"value":"d"},"stream_name":{"value":"s"},'
        '"table_name":{"value":"sluice-%s-events"},"api_keys_table_name":{"value":"k"},"region":{"value":"eu-west-1"}}\' "$w" "$w"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    args = cli.build_parser().parse_args(["--deployment", "--env", "prod", "stats"])
    # WHEN the CLI resolves its target
    stack = cli._connect(args)
    # THEN it is the prod workspace's stack, in the stack's region, with the caller's credentials kept
    assert stack.queue_url == "q-prod" and stack.table_name == "sluice-prod-events"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1" and args.deployed
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"  # untouched: the conftest's, not replaced
