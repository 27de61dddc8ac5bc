"""scripts/quorum_kill.py in short (reliability figure D5): the HSM that generated a KMS key in a
custom key store is SIGKILLed right after CreateKey answered; the key survives on the other HSM,
stays usable, and after the control plane's heal every acknowledged key is on every HSM. With
one HSM of two left, a new key is refused rather than acknowledged with one copy.

One run of the script (3 trials, 4 create-at-heal probes, the refusal check; about 45 s) feeds
every test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from strongroom.hsm._replicate import AVAILABILITY_MESSAGE

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quorum_kill.py"


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "3", "--probes", "4", "--seed", "5005"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert "QUORUM_KILL_JSON " in done.stdout, done.stdout + done.stderr[-3000:]
    line = done.stdout.split("QUORUM_KILL_JSON ", 1)[1].splitlines()[0]
    out: dict[str, Any] = json.loads(line)
    out["stdout"] = done.stdout
    return out


def test_killing_the_generating_hsm_after_the_ack_loses_nothing(summary: dict[str, Any]) -> None:
    assert summary["trials"] == 3 and summary["hsms"] == 2, summary
    assert summary["failures_by_phase"].get("trials", 0) == 0, summary["stdout"]
    assert summary["lost"] == summary["lost_in_probes"], summary  # none lost in the trials
    # each trial killed within a few ms of the ack, healed, and old ciphertexts decrypted
    assert summary["ack_to_kill"][1] < 1000, summary  # [p50, max] in ms
    assert summary["heal"][1] < 60 and summary["checked"] >= 9, summary
    assert summary["use_retries"] == 0, summary


def test_one_hsm_of_two_left_refuses_a_new_key(summary: dict[str, Any]) -> None:
    refusal = summary["refusal"]
    assert summary["failures_by_phase"].get("refusal", 0) == 0, summary["stdout"]
    # the HSM client's own rule: the key reached one HSM, so it is deleted and refused
    assert refusal["hsm_client"] == AVAILABILITY_MESSAGE, refusal
    assert refusal["hsm_client_copies_left"] == 0, refusal
    # KMS, the other HSM killed: refused by its cluster check, before any HSM call
    assert refusal["kms_killed"].startswith("CloudHsmClusterInvalidConfigurationException"), refusal
    assert refusal["not_yet_replaced"] is True, refusal
    # KMS, the other HSM stalled (alive to the control plane): the HSM client's rule refuses,
    # answered as the cluster's configuration, as AWS answers a CreateKey it cannot place
    assert refusal["kms_stalled"].startswith("CloudHsmClusterInvalidConfigurationException"), (
        refusal
    )


def test_create_key_the_moment_a_replacement_is_active_keeps_two_copies(
    summary: dict[str, Any],
) -> None:
    assert summary["probes"] == 4, summary
    assert summary["failures_by_phase"].get("probes", 0) == 0, summary["stdout"]
    # a CreateKey while KMS's connection still knows one HSM is refused (two copies are
    # required whatever the connection knows), never acknowledged with one copy
    assert summary["lost_in_probes"] == 0 and summary["single_copy"] == 0, summary
