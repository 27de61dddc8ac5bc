#!/usr/bin/env python3
"""Key availability quorum (reliability figure D5): SIGKILL the HSM that made a key right after
CreateKey acknowledged it; no acknowledged key may be lost.

    .venv/bin/python scripts/quorum_kill.py [--trials 200] [--seconds 1800] [--hsms 2|3]
        [--sample 5] [--probes 0] [--seed N]

serve (bench/authz_bench.py) with ``--hsms`` HSMs in as many AZs and a connected custom key
store (bench/cloudhsm_setup.py's steps). Each trial: CreateKey (Origin AWS_CLOUDHSM; KMS's HSM
client copies the key to the other HSMs before it answers, hsm/_replicate.py); at once SIGKILL
the HSM that generated it (the one whose audit log, read as admin, has the CN_GENERATE_KEY); a
surviving HSM must hold the key and Encrypt/Decrypt through KMS must work; the control plane
heals (a new HSM in the same AZ, cloned; heal time = kill to N ACTIVE); every key acknowledged
so far must be on every HSM with one reference (a gap gets 12 s for the 5 s key sync) and a
sample of old ciphertexts must decrypt; the next trial waits for KMS to log in to the new HSM.

``--probes N``: trials that kill an HSM first and call CreateKey the moment its replacement is
ACTIVE. Last, the refusal check: all HSMs but one stalled (SIGSTOP), then killed and not yet
replaced; KMS CreateKey and a key made through the HSM client must be refused (the latter with
the availability error, leaving no copy). Exit 1 on a lost key (held by no HSM) or any other
failure. Processes are stopped by PID, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from authz_bench import strongroom as serve
from cloudhsm_setup import ADMIN_PW, KMSUSER_PW, REGION, _cluster, _hsm_cli, client, wait_for
from kms_bench import BIN, Settings

from strongroom.cloudhsm.supervisor import NODE_ARGS_ENV
from strongroom.crypto.x509 import CustomerCa
from strongroom.hsm._replicate import AVAILABILITY_MESSAGE
from strongroom.hsm.client import HsmClient, HsmClientError, client_ssl_context

FAST_NODES = "--argon2-time-cost 1 --argon2-memory-kib 8192"  # logins are not what is measured
PROBE_USER, PROBE_PW = "quorumuser", "quorum-user-pass-1"
ZONES = ("a", "b", "c")
SYNC_WAIT = 12.0  # seconds for the server-side key sync (every 5 s) to fill a gap


@dataclass
class Tally:
    trials: int = 0
    probes: int = 0
    acked: list[tuple[str, bytes, bytes, dict[str, str]]] = field(default_factory=list)
    probe_keys: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)
    single_copy: int = 0
    gaps: int = 0  # (key, heal) pairs where the key was missing on some HSM right after heal
    checked: int = 0
    refused: list[str] = field(default_factory=list)
    use_retries: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)  # ARN-labelled keys KMS never acknowledged
    refusal: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    phase: str = "trials"
    by_phase: dict[str, int] = field(default_factory=dict)  # failures in trials/probes/refusal

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.by_phase[self.phase] = self.by_phase.get(self.phase, 0) + 1

    def time(self, name: str, since: float) -> None:
        self.times.setdefault(name, []).append(time.monotonic() - since)


class Rig:
    """The cluster behind a connected store, with an admin session on each ACTIVE HSM."""

    def __init__(self, endpoint: str, creds: tuple[str, str], data_dir: Path, anchor: Path,
                 cid: str, store: str, size: int) -> None:  # fmt: skip
        self.hsm, self.kms = client("cloudhsmv2", endpoint, *creds), client("kms", endpoint, *creds)
        self.data_dir, self.cid, self.store, self.size = data_dir, cid, store, size
        self.ctx = client_ssl_context(trust_anchor=anchor)
        self.admin: dict[str, HsmClient] = {}
        self.audit_pos: dict[str, int] = {}

    def active(self) -> list[dict[str, Any]]:
        return [h for h in _cluster(self.hsm, self.cid)["Hsms"] if h["State"] == "ACTIVE"]

    def pid(self, hsm_id: str) -> int:
        return int((self.data_dir / "hsms" / hsm_id / "node.pid").read_text())

    def sessions(self) -> None:
        """Admin sessions on the ACTIVE HSMs (audit logs read from their start)."""
        active = {h["HsmId"]: h for h in self.active()}
        for gone in set(self.admin) - set(active):
            with contextlib.suppress(Exception):
                self.admin.pop(gone).close()
        for hsm_id, h in active.items():
            if hsm_id not in self.admin:
                c = HsmClient([f"{h['EniIp']}:2223"], self.ctx, timeout=10)
                c.login("admin", ADMIN_PW, "admin")
                self.admin[hsm_id], self.audit_pos[hsm_id] = c, 0

    def seen(self, opcode: str, user: str, among: set[str] | None = None) -> list[str]:
        """HSMs whose audit log got a successful ``opcode`` by ``user`` since the last look."""
        found = []
        for hsm_id, c in self.admin.items():
            if among is None or hsm_id in among:
                records = c.audit(self.audit_pos[hsm_id], 10000)
                self.audit_pos[hsm_id] = records[-1].seq + 1 if records else self.audit_pos[hsm_id]
                if any(r.opcode.startswith(opcode) and r.user == user and not r.code
                       for r in records):  # fmt: skip
                    found.append(hsm_id)
        return found

    def settle(self, new: set[str], timeout: float = 10) -> bool:
        """Until KMS has logged in as kmsuser on each new HSM (its connection follows them)."""
        deadline, left = time.monotonic() + timeout, set(new)
        while left and time.monotonic() < deadline:
            left -= set(self.seen("CN_LOGIN ", "kmsuser", left))
            time.sleep(0.02)
        return not left

    def kill(self, hsm_id: str, sig: int = signal.SIGKILL) -> int:
        pid = self.pid(hsm_id)
        if hsm_id.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # still that node
            os.kill(pid, sig)
        if sig == signal.SIGKILL:
            with contextlib.suppress(Exception):
                self.admin.pop(hsm_id).close()
        return pid

    def create_key(self) -> str:
        meta = self.kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=self.store)
        return str(meta["KeyMetadata"]["Arn"])

    def holdings(self) -> dict[str, dict[str, int]]:
        """Label → reference of every key, per HSM."""
        return {i: {k.label: k.ref for k in c.find_keys()} for i, c in self.admin.items()}

    def holders(self, label: str) -> list[str]:
        return [i for i, held in self.holdings().items() if label in held]

    def heal(self, victims: set[str], timeout: float = 120) -> None:
        """Until N HSMs are ACTIVE again, none of ``victims`` (a look every 20 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = {h["HsmId"] for h in self.active()}
            if len(ids) == self.size and not victims & ids:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"no heal within {timeout} s: ACTIVE {sorted(ids)}")
            time.sleep(0.02)


def setup(endpoint: str, creds: tuple[str, str], data_dir: Path, work: Path, size: int) -> Rig:
    """cloudhsm_setup.setup_store's steps for ``size`` HSMs in as many AZs (no key)."""
    hsm, kms = client("cloudhsmv2", endpoint, *creds), client("kms", endpoint, *creds)
    subnets = [f"subnet-0000000{z}" for z in ZONES[:size]]
    cid = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]["ClusterId"]
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "UNINITIALIZED")
    for zone in ZONES[:size]:
        hsm.create_hsm(ClusterId=cid, AvailabilityZone=f"{REGION}{zone}")
    # every HSM ACTIVE before the CSR is read: HSMs brought up in one control pass may each
    # make a CSR, the later replacing the earlier
    wait_for(lambda: [h for h in _cluster(hsm, cid)["Hsms"] if h["State"] == "ACTIVE"],
             lambda x: len(x) == size)  # fmt: skip
    csr = wait_for(lambda: _cluster(hsm, cid)["Certificates"].get("ClusterCsr"), bool)
    ca = CustomerCa()
    hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign_csr(csr),
                           TrustAnchor=ca.certificate_pem)  # fmt: skip
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "INITIALIZED")
    anchor = work / f"{cid}-customerCA.crt"
    anchor.write_text(ca.certificate_pem)
    cli: tuple[Path, str, str, str, str, Path] = (BIN, endpoint, *creds, cid, anchor)
    _hsm_cli(*cli, ["cluster", "activate", "--password", ADMIN_PW])
    for user, pw in (("kmsuser", KMSUSER_PW), (PROBE_USER, PROBE_PW)):
        _hsm_cli(*cli, ["user", "create", "--username", user, "--role", "crypto-user",
                        "--password", pw], role="admin")  # fmt: skip
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "ACTIVE")
    store = kms.create_custom_key_store(
        CustomKeyStoreName=f"quorum-{cid}", CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem, KeyStorePassword=KMSUSER_PW,
    )["CustomKeyStoreId"]  # fmt: skip
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    state = wait_for(
        lambda: kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0],
        lambda e: e["ConnectionState"] in ("CONNECTED", "FAILED"),
    )["ConnectionState"]
    if state != "CONNECTED":
        raise RuntimeError(f"the key store did not connect: {state}")
    rig = Rig(endpoint, creds, data_dir, anchor, cid, store, size)
    rig.sessions()
    return rig


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
    return f"{type(exc).__name__}: {exc}"


def use(rig: Rig, tally: Tally, arn: str, n: int) -> None:
    """Encrypt and Decrypt through KMS with the new key (retried for up to 10 s)."""
    plaintext, context, deadline = f"trial {n}".encode(), {"trial": str(n)}, time.monotonic() + 10
    while True:
        try:
            blob = rig.kms.encrypt(KeyId=arn, Plaintext=plaintext, EncryptionContext=context)
            out = rig.kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=context)
            break
        except (ClientError, BotoCoreError) as exc:
            if time.monotonic() > deadline:
                tally.fail(f"trial {n}: {arn} unusable after the kill: {_error(exc)}")
                return
            tally.use_retries += 1
            time.sleep(0.1)
    if out["Plaintext"] != plaintext:
        tally.fail(f"trial {n}: {arn} decrypted to something else")
    tally.acked[-1] = (arn, plaintext, blob["CiphertextBlob"], context)


def verify(rig: Rig, tally: Tally, n: int, sample: int) -> None:
    """Every acknowledged key on every HSM, with one reference; sample ciphertexts decrypt."""
    wanted, held = {arn for arn, *_ in tally.acked}, rig.holdings()
    for arn in sorted(wanted - set().union(*held.values()) - set(tally.lost)):
        tally.fail(f"after trial {n}: {arn} is held by no HSM (lost)")
        tally.lost.append(arn)

    def gaps() -> set[str]:
        return {a for a in wanted - set(tally.lost) if any(a not in h for h in held.values())}

    if gaps():
        tally.gaps += len(gaps())
        deadline = time.monotonic() + SYNC_WAIT
        while gaps() and time.monotonic() < deadline:
            time.sleep(0.5)
            held = rig.holdings()
        for arn in sorted(gaps()):
            where = [i for i, h in held.items() if arn not in h]
            tally.fail(f"after trial {n}: {arn} still missing on {where}")
    for arn in wanted:
        if len({h[arn] for h in held.values() if arn in h}) > 1:
            tally.fail(f"after trial {n}: {arn} has different references")
    tally.orphans |= {x for h in held.values() for x in h if x.startswith("arn:")} - wanted
    done = [a for a in tally.acked if a[2]]
    for arn, plaintext, blob, context in random.sample(done, min(sample, len(done))):
        try:
            out = rig.kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
        except (ClientError, BotoCoreError) as exc:
            out = _error(exc).encode()
        tally.checked += 1
        if out != plaintext:
            tally.fail(f"after trial {n}: a ciphertext of {arn} failed: {out[:120]!r}")


def trial(rig: Rig, tally: Tally, n: int, sample: int, probe: bool = False) -> None:
    """CreateKey, SIGKILL the HSM that generated it at once, use the key, heal, verify. A probe
    first kills some HSM and calls CreateKey the moment its replacement is ACTIVE."""
    if probe:
        victim = random.choice(list(rig.admin))
        rig.kill(victim)
        rig.heal({victim})
    tally.probes += probe
    tally.trials += not probe
    try:
        arn = rig.create_key()
    except ClientError as exc:
        tally.refused.append(f"trial {n}: {_error(exc)}")
        rig.sessions()
        return
    acked = time.monotonic()
    tally.acked.append((arn, b"", b"", {}))
    if probe:
        tally.probe_keys.add(arn)
        rig.sessions()  # the replacement's audit log
    makers = rig.seen("CN_GENERATE_KEY ", "kmsuser")
    if len(makers) != 1:
        tally.fail(f"trial {n}: the generating HSM is not clear: {makers}")
        makers = makers[:1] or [random.choice(list(rig.admin))]
    rig.kill(makers[0])
    tally.time("probe_ack_to_kill" if probe else "ack_to_kill", acked)
    killed = time.monotonic()
    if rig.holders(arn):
        use(rig, tally, arn, n)
    else:
        tally.single_copy += 1
        tally.fail(f"trial {n}: {arn} acknowledged with one copy ({makers[0]})")
    before = set(rig.admin)
    rig.heal({makers[0]})
    tally.time("heal", killed)
    rig.sessions()
    verify(rig, tally, n, sample)
    settle = time.monotonic()
    if not rig.settle(set(rig.admin) - before):
        tally.fail(f"trial {n}: KMS did not log in to the new HSM within 10 s")
    tally.time("kms_follows", settle)
    if n % 25 == 0:
        print(f"{n} done: {len(tally.acked)} acked, {len(tally.lost)} lost", flush=True)


def _attempt(rig: Rig, tally: Tally) -> str:
    """A CreateKey that should be refused: its error, or ``ACKNOWLEDGED <arn>`` (counted)."""
    try:
        arn = rig.create_key()
    except ClientError as exc:
        return _error(exc)
    tally.acked.append((arn, b"", b"", {}))
    return f"ACKNOWLEDGED {arn}"


def refusal(rig: Rig, tally: Tally) -> None:
    """All HSMs but one stalled, then killed and not yet replaced: no key may be acknowledged."""
    active = rig.active()
    victims, out = {h["HsmId"] for h in active[:-1]}, dict[str, Any](hsms=len(active))
    # (a) stalled (SIGSTOP): live to the control plane, so KMS checks the cluster, calls its
    # HSM client, and that client's replication must refuse
    pids = [rig.kill(v, signal.SIGSTOP) for v in victims]
    start = time.monotonic()
    try:
        out["kms_stalled"] = _attempt(rig, tally)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    out["kms_stalled_seconds"] = round(time.monotonic() - start, 2)
    refused_arn = str(out["kms_stalled"]).split("key material of ")[-1].split(" ")[0]
    time.sleep(1.0)  # the stalled HSMs run what was queued for them
    # (b) killed: the HSM client (logged in on every HSM before), then KMS
    probe = HsmClient([f"{h['EniIp']}:2223" for h in active], rig.ctx, timeout=5)
    try:
        probe.login(PROBE_USER, PROBE_PW, "crypto-user")
        for hsm_id in victims:
            rig.kill(hsm_id)
        killed = time.monotonic()
        try:
            out["hsm_client"] = f"ACKNOWLEDGED {probe.generate_aes_key('quorum-refusal').ref}"
        except HsmClientError as exc:
            out["hsm_client"] = exc.message
        out["kms_killed"] = _attempt(rig, tally)
        out["not_yet_replaced"] = {h["HsmId"] for h in rig.active()} <= {h["HsmId"] for h in active}
        out["hsm_client_copies_left"] = len(rig.holders("quorum-refusal"))
    finally:
        with contextlib.suppress(Exception):
            probe.close()
    rig.heal(victims)
    out["heal_seconds"] = round(time.monotonic() - killed, 2)
    rig.sessions()
    verify(rig, tally, 0, len(tally.acked))  # every ciphertext, at the end
    out["orphan_keys"], out["orphan_is_the_refused_key"] = (
        len(tally.orphans), refused_arn in tally.orphans
    )  # fmt: skip
    tally.refusal = out
    if out["hsm_client"] != AVAILABILITY_MESSAGE or out["hsm_client_copies_left"]:
        tally.fail(f"refusal check: the HSM client path gave {out}")
    for k in ("kms_stalled", "kms_killed"):
        if str(out[k]).startswith("ACKNOWLEDGED"):
            tally.fail(f"refusal check: KMS acknowledged a key ({k}): {out[k]}")


def reap(pids: dict[int, str]) -> None:
    """SIGKILL any node left running after serve stopped (by PID, if still that node)."""
    for pid, hsm_id in pids.items():
        with contextlib.suppress(OSError):
            if hsm_id.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="kill trials (200)")
    parser.add_argument("--seconds", type=float, default=1800, help="no new trial after (1800)")
    parser.add_argument("--hsms", type=int, choices=(2, 3), default=2, help="cluster size (2)")
    parser.add_argument("--sample", type=int, default=5, help="old ciphertexts per trial (5)")
    parser.add_argument("--probes", type=int, default=0, help="CreateKey-at-heal trials (0)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    return parser.parse_args(argv)


def report(args: argparse.Namespace, tally: Tally, elapsed: float) -> dict[str, Any]:
    in_probes = len(set(tally.lost) & tally.probe_keys)
    summary: dict[str, Any] = {
        "trials": tally.trials, "probes": tally.probes, "hsms": args.hsms,
        "acked": len(tally.acked), "lost": len(tally.lost), "lost_in_probes": in_probes,
        "single_copy": tally.single_copy, "gaps_after_heal": tally.gaps,
        "refused": len(tally.refused), "checked": tally.checked, "use_retries": tally.use_retries,
        "failures": len(tally.failures), "failures_by_phase": tally.by_phase,
        "seconds": round(elapsed, 1),
    }  # fmt: skip
    for name, values in tally.times.items():  # p50 and max (ms for *_to_kill, else s)
        scale = 1000 if name.endswith("kill") else 1
        summary[name] = [round(statistics.median(values) * scale, 3),
                         round(max(values) * scale, 3)]  # fmt: skip
    summary["refusal"] = tally.refusal
    for line in tally.refused[:5] + tally.failures[:20]:
        print(f"  {line}")
    print("QUORUM_KILL_JSON " + json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    random.seed(args.seed)
    tally, start, pids = Tally(), time.monotonic(), dict[int, str]()
    saved = os.environ.get(NODE_ARGS_ENV)
    os.environ.setdefault(NODE_ARGS_ENV, FAST_NODES)  # serve passes it to its HSM nodes
    with tempfile.TemporaryDirectory(prefix="quorum-kill-") as tmp:
        work = Path(tmp)
        try:
            with serve(Settings(1, 1, 1, 0, 1, False, 1), work / "serve.log", "quorum") as srv:
                data_dir, rig = Path(srv.key_id), None
                try:
                    rig = setup(srv.endpoint, (srv.access_key, srv.secret_key), data_dir, work,
                                args.hsms)  # fmt: skip
                    while tally.trials < args.trials and time.monotonic() - start < args.seconds:
                        trial(rig, tally, tally.trials + 1, args.sample)
                    tally.phase = "probes"
                    for p in range(args.probes):
                        trial(rig, tally, tally.trials + p + 1, args.sample, probe=True)
                    tally.phase = "refusal"
                    refusal(rig, tally)
                finally:
                    for c in rig.admin.values() if rig else ():
                        with contextlib.suppress(Exception):
                            c.close()
                    for f in (data_dir / "hsms").glob("*/node.pid"):
                        with contextlib.suppress(OSError, ValueError):
                            pids[int(f.read_text())] = f.parent.name
        except Exception as exc:
            tally.fail(f"run aborted: {_error(exc)}")
            log = work / "serve.log"
            if log.exists():
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        finally:
            reap(pids)
            if saved is None:
                os.environ.pop(NODE_ARGS_ENV, None)
    report(args, tally, time.monotonic() - start)
    return 1 if tally.failures or tally.lost else 0


if __name__ == "__main__":
    sys.exit(main())
