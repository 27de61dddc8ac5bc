"""Benchmark what authorization costs on the hot path: Encrypt with and without access control.

In one run, with kms_bench.py's machinery (servers on free loopback ports, requests pre-signed
with botocore's SigV4Auth, replayed by wrk with ``wrk_replay.lua``, CPU accounting):

* (a) ``strongroom serve --insecure-open-access`` — no key policy, IAM policy or grant is looked
  at: the unauthorized baseline;
* (b) a normal ``serve``, a key with AWS's default key policy (the account root, so IAM decides:
  the admin's allow-all identity policy is evaluated too);
* (c) the same server, a key whose policy has 20 statements with conditions (encryption context,
  source IP, Null, ForAnyValue, ...), the one allowing statement last.

Every request is the same shape on every server: Encrypt of 32 random bytes with a two-pair
encryption context. Both servers run side by side and the loads are interleaved (a, b, c,
a, b, c, ...) for ``--rounds`` rounds, so slow drift on a shared machine hits all three alike;
the median round of each is reported with the ratios b/a and c/a (goal: at least 0.8).

Needs wrk and the bench extra, as kms_bench.py. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from kms_bench import (
    BIN,
    LUA,
    REGION,
    RESULTS,
    Server,
    Settings,
    free_port,
    machine_busy_seconds,
    parse_wrk,
    pinned,
    read_credentials,
    stop,
    tree_cpu_seconds,
    wait_for_port,
    write_signed,
    wrk_binary,
)
from kms_report import LoadResult, check, rounds_table, save

ACCOUNT = "111122223333"
CONTEXT = {"app": "payments", "tenant": "t-0042"}
GOAL = 0.8


# --- servers and keys --------------------------------------------------------------------------


@contextlib.contextmanager
def strongroom(settings: Settings, log: Path, name: str, *extra: str) -> Iterator[Server]:
    """A fresh ``strongroom serve`` (own temporary data dir, free port), stopped by PID."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="strongroom-authz-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        argv = [str(BIN / "strongroom"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
        argv += ["--workers", str(settings.workers), *extra]
        with log.open("wb") as out:
            proc = subprocess.Popen(  # the trail-off baseline may be asked for
                pinned(argv, settings.server_cpus, settings), stdout=out, stderr=out,
                env={**os.environ, "STRONGROOM_TESTING_ALLOW_NO_TRAIL": "1"},
            )  # fmt: skip
        try:
            wait_for_port(proc, port, log)
            ak, sk = read_credentials(data_dir / "credentials")
            server = Server(name, proc, port, ak, sk)
            server.key_id = str(data_dir)  # (unused by this bench: where its data lives)
            yield server
        finally:
            stop(proc)


def kms_client(server: Server) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def twenty_statements(admin_arn: str) -> dict[str, Any]:
    """A realistic 20-statement key policy; only the last statement allows the benchmark's
    Encrypt. The others are evaluated for every request (their Action covers kms:Encrypt or a
    wildcard) or filtered out by Action, as they would be in a production policy."""
    root = f"arn:aws:iam::{ACCOUNT}:root"
    other = [f"arn:aws:iam::{ACCOUNT}:root", "444455556666", "arn:aws:iam::555566667777:root"]
    context_keys = {"kms:EncryptionContextKeys": ["app", "tenant", "request-id"]}

    def stmt(sid: str, effect: str, principal: Any, action: Any, **cond: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Sid": sid, "Effect": effect, "Principal": principal, "Action": action,
            "Resource": "*",
        }  # fmt: skip
        if cond:
            out["Condition"] = cond
        return out

    statements = [
        stmt("ReadOnlyForTheAccount", "Allow", {"AWS": root},
             ["kms:Describe*", "kms:List*", "kms:Get*"]),
        stmt("KeyAdministrators", "Allow", {"AWS": admin_arn},
             ["kms:Create*", "kms:Enable*", "kms:Put*", "kms:Update*", "kms:Revoke*",
              "kms:Disable*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
              "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"]),
        stmt("DenyOutsideTheNetwork", "Deny", "*", "kms:*",
             NotIpAddress={"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16"]}),
        stmt("DenyCryptoWithoutContext", "Deny", "*",
             ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
             Null={"kms:EncryptionContextKeys": "true"}),
        stmt("DenyUnknownContextKeys", "Deny", "*", ["kms:Encrypt", "kms:GenerateDataKey*"],
             **{"ForAnyValue:StringNotEquals": context_keys}),
        stmt("DenyOtherAlgorithms", "Deny", "*", ["kms:Encrypt", "kms:Decrypt"],
             StringNotEquals={"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
        stmt("DenyPlaintextTransportOnlyForPartners", "Deny", {"AWS": other[1:]}, "kms:*",
             Bool={"aws:SecureTransport": "false"}),
        stmt("PartnersDecrypt", "Allow", {"AWS": other[1:]}, "kms:Decrypt",
             StringEquals={"kms:CallerAccount": ["444455556666", "555566667777"]}),
        stmt("ReportingGenerateDataKey", "Allow",
             {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reporting"}, "kms:GenerateDataKey*",
             StringEquals={"kms:EncryptionContext:app": "reporting"}),
        stmt("BatchEncrypt", "Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/batch"},
             ["kms:Encrypt", "kms:Decrypt"],
             StringLike={"kms:EncryptionContext:tenant": "batch-*"},
             IpAddress={"aws:SourceIp": "10.20.0.0/16"}),
        stmt("LedgerService", "Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ledger"},
             ["kms:Encrypt", "kms:Decrypt"],
             StringEquals={"kms:EncryptionContext:app": "ledger"}),
        stmt("AuditReadOnly", "Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/audit"},
             ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"]),
        stmt("GrantsForServicesOnly", "Allow", {"AWS": admin_arn},
             ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
             Bool={"kms:GrantIsForAWSResource": "true"}),
        stmt("ViaS3Only", "Allow", "*", ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
             StringEquals={"kms:ViaService": f"s3.{REGION}.amazonaws.com",
                           "kms:CallerAccount": ACCOUNT}),
        stmt("BusinessHours", "Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ops"},
             ["kms:Encrypt", "kms:Decrypt"],
             DateGreaterThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"},
             DateLessThan={"aws:CurrentTime": "2020-01-02T00:00:00Z"}),
        stmt("TaggedCallers", "Allow", "*", "kms:Encrypt",
             StringEquals={"aws:PrincipalTag/team": "payments"}),
        stmt("OwnerByUsername", "Allow", {"AWS": root}, "kms:Encrypt",
             StringEquals={"kms:EncryptionContext:owner": "${aws:username}"}),
        stmt("DenySessionsOfOtherAccounts", "Deny", "*", "kms:*",
             StringEquals={"aws:PrincipalType": "AssumedRole"},
             StringNotEquals={"aws:PrincipalAccount": ACCOUNT}),
        stmt("TenantsNumbered", "Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/tenants"},
             "kms:Encrypt", StringLike={"kms:EncryptionContext:tenant": "t-*"}),
        stmt("PaymentsAppEncrypt", "Allow", {"AWS": admin_arn}, "kms:Encrypt",
             StringEquals={"kms:EncryptionContext:app": "payments"},
             IpAddress={"aws:SourceIp": "127.0.0.0/8"},
             Null={"kms:EncryptionContext:tenant": "false"},
             **{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["app"]}}),
    ]  # fmt: skip
    assert len(statements) == 20
    return {"Version": "2012-10-17", "Id": "bench-20-statements", "Statement": statements}


ROLES = ("reporting", "batch", "ledger", "audit", "ops", "tenants")


def create_roles(data_dir: str) -> None:
    """The roles the 20-statement policy names (a key policy may name only existing ones),
    made with ``strongroom iam create-role`` against the running server's data dir."""
    trust = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"AWS": ACCOUNT}}]}
    )  # fmt: skip
    for role in ROLES:
        subprocess.run(
            [str(BIN / "strongroom"), "iam", "create-role", role, "--trust-policy", trust,
             "--data-dir", data_dir, "--account-id", ACCOUNT],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def prepare_keys(server: Server) -> tuple[str, str]:
    """On the access-controlled server: (default-policy key, 20-statement key), each checked."""
    create_roles(server.key_id)
    kms = kms_client(server)
    default = kms.create_key(Description="authz_bench default")["KeyMetadata"]["KeyId"]
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    policy = json.dumps(twenty_statements(admin_arn))
    big = kms.create_key(Description="authz_bench 20 statements", Policy=policy)["KeyMetadata"]
    for key in (default, big["KeyId"]):
        blob = kms.encrypt(KeyId=key, Plaintext=b"x" * 32, EncryptionContext=CONTEXT)
        assert blob["KeyId"].endswith(key)
    # The conditions are live: without the context, or with another app, Encrypt is denied.
    for context in ({}, {"app": "ledger", "tenant": "t-1"}, {"app": "payments"}):
        try:
            kms.encrypt(KeyId=big["KeyId"], Plaintext=b"x", EncryptionContext=context)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDeniedException", exc.response
        else:
            raise AssertionError(f"the 20-statement policy allowed context {context}")
    return str(default), str(big["KeyId"])


# --- load --------------------------------------------------------------------------------------


def sign(server: Server, key_id: str, count: int, path: Path) -> None:
    """``count`` distinct signed Encrypt requests (32 random bytes, CONTEXT)."""
    bodies = (
        {"KeyId": key_id, "Plaintext": base64.b64encode(secrets.token_bytes(32)).decode(),
         "EncryptionContext": CONTEXT}
        for _ in range(count)
    )  # fmt: skip
    write_signed(server, "Encrypt", bodies, path)


def load(
    server: Server, label: str, key_id: str, settings: Settings, duration: int, workdir: Path
) -> LoadResult:
    """Sign fresh requests for ``key_id``, replay them with wrk, and measure (as run_wrk)."""
    reqfile = workdir / f"{label}.req"
    sign(server, key_id, settings.signed, reqfile)
    argv = [
        wrk_binary(), f"-t{settings.threads}", f"-c{settings.connections}", f"-d{duration}s",
        "--timeout", "10s", "-s", str(LUA), server.endpoint + "/", "--", str(reqfile),
    ]  # fmt: skip
    before_machine = machine_busy_seconds()
    before_server = tree_cpu_seconds(server.proc.pid)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        pinned(argv, settings.wrk_cpus, settings),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server.proc.pid) - before_server
    machine_cpu = machine_busy_seconds() - before_machine
    wrk_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    cpu = (server_cpu, wrk_cpu, max(0.0, machine_cpu - server_cpu - wrk_cpu))
    return parse_wrk(label, "Encrypt", done, cpu)


# --- report ------------------------------------------------------------------------------------

LABELS = {
    "a-open": "(a) --insecure-open-access",
    "b-default": "(b) default key policy",
    "c-20-statements": "(c) 20 statements + conditions",
}


def report(rounds: dict[str, list[LoadResult]]) -> tuple[list[str], dict[str, float]]:
    lines, medians, per_cpu = rounds_table(rounds, LABELS)
    base = medians["a-open"]
    ratios = {
        "b/a": medians["b-default"] / base,
        "c/a": medians["c-20-statements"] / base,
    }
    lines.append("")
    for name, value in ratios.items():
        label = "b-default" if name == "b/a" else "c-20-statements"
        cpu_ratio = per_cpu[label] / per_cpu["a-open"]
        verdict = "meets" if value >= GOAL else "BELOW"
        lines.append(
            f"{name} = {value:.2f} req/s ({cpu_ratio:.2f} per server CPU-second): "
            f"{verdict} the goal of {GOAL}"
        )
    return lines, ratios


# --- main --------------------------------------------------------------------------------------


def variant_args(
    argv: list[str] | None, description: str, warmup_help: str = "warm-up seconds per server"
) -> argparse.Namespace:
    """The options every side-by-side variant benchmark takes (authz, audit, cloudhsm)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help=warmup_help)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--signed", type=int, default=2000, help="distinct signed requests")
    parser.add_argument("--workers", type=int, default=2, help="strongroom serve --workers (2)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 20:
        parser.error("--duration must be 1..600 s, --warmup 0..60 s, --rounds 1..20")
    if not 1 <= args.signed <= 100_000:
        parser.error("--signed must be 1..100000")
    if not 1 <= args.threads <= args.connections <= 10_000:
        parser.error("need 1 <= --threads <= --connections <= 10000")
    return args


def variant_settings(args: argparse.Namespace) -> Settings:
    """wrk and serve settings from :func:`variant_args` (no CPU pinning)."""
    return Settings(
        args.threads, args.connections, args.duration, args.warmup, args.signed, False,
        args.workers,
    )  # fmt: skip


def run_rounds(
    plan: list[tuple[str, Server, str]],
    labels: dict[str, str],
    settings: Settings,
    rounds: int,
    workdir: Path,
) -> dict[str, list[LoadResult]]:
    """Warm each (label, server, key) up, then run ``rounds`` interleaved loads of each, so a
    change in the machine's load hits every variant alike."""
    results: dict[str, list[LoadResult]] = {label: [] for label in labels}
    for label, server, key in plan if settings.warmup else []:
        load(server, f"warmup-{label}", key, settings, settings.warmup, workdir)
    for number in range(1, rounds + 1):
        for label, server, key in plan:
            result = load(server, label, key, settings, settings.duration, workdir)
            results[label].append(result)
            print(
                f"  round {number} {labels[label]:<32} {result.rps:>9,.0f} req/s "
                f"({result.non2xx} non-2xx, other CPU {result.other_cpu_pct:.0f}%)",
                flush=True,
            )
    return results


def finish(
    args: argparse.Namespace, bench: str, rounds: dict[str, list[LoadResult]], lines: list[str]
) -> int:
    """Print the report, save it (unless --no-save), warn about a busy machine; exit status 1
    if any response was not 2xx or any socket error occurred."""
    print("\n" + "\n".join(lines))
    every = [r for results in rounds.values() for r in results]
    if not args.no_save:
        path = save(RESULTS, {**vars(args), "bench": bench, "summary": lines}, every, [])
        print(f"\nresults: {path}")
    busy = [r for r in every if r.other_cpu_pct > 20]
    if busy:
        print(
            f"WARNING: other processes used over 20% of a CPU during {len(busy)} of "
            f"{len(every)} loads (up to {max(r.other_cpu_pct for r in busy):.0f}%); the machine "
            "was not quiet, so absolute figures are lower bounds (the interleaving keeps the "
            "ratios fair)",
            file=sys.stderr,
        )
    problems = check(every)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = variant_args(argv, __doc__.split("\n\n")[0])
    wrk_binary()
    settings = variant_settings(args)
    print(
        f"Encrypt (32 bytes, 2-pair encryption context): wrk -t{settings.threads} "
        f"-c{settings.connections} -d{settings.duration}s x {args.rounds} interleaved rounds, "
        f"serve --workers {settings.workers}, {settings.signed} pre-signed requests per load"
    )
    with tempfile.TemporaryDirectory(prefix="authz-bench-") as tmp:
        workdir = Path(tmp)
        with (
            strongroom(settings, workdir / "open.log", "open", "--insecure-open-access") as open_,
            strongroom(settings, workdir / "authz.log", "authz") as authz,
        ):
            open_key = kms_client(open_).create_key()["KeyMetadata"]["KeyId"]
            default_key, big_key = prepare_keys(authz)
            plan = [
                ("a-open", open_, open_key),
                ("b-default", authz, default_key),
                ("c-20-statements", authz, big_key),
            ]
            rounds = run_rounds(plan, LABELS, settings, args.rounds, workdir)
    lines, _ = report(rounds)
    return finish(args, "authz_bench", rounds, lines)


if __name__ == "__main__":
    sys.exit(main())
