"""What an HSM of each CloudHSM type holds at most (cloudhsm.md §1.8 and §7.2).

The node is told its type when it starts (``hsm-node --hsm-type``; the control plane passes
the HSM's own ``HsmType``) and refuses to create a user or key past its type's limit with
``LIMIT_EXCEEDED``; ``HsmUsersMax`` reports the user limit.

* hsm1.medium: 250 users and 3,300 keys (the current quotas page; the 2023 page said 1,024
  users);
* hsm2m.medium: 1,024 users and 16,666 keys, of which at most 3,333 asymmetric. [inferred] The
  reference does not say how a key pair counts; each half is a key object of its own, as it
  counts towards the total, so each counts as one asymmetric key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_HSM_TYPE", "HSM_TYPES", "HsmTypeLimits"]


@dataclass(frozen=True, slots=True)
class HsmTypeLimits:
    users: int
    keys: int
    #: key objects of the private-key and public-key classes, counted within ``keys``
    asymmetric_keys: int


HSM_TYPES = {
    "hsm1.medium": HsmTypeLimits(users=250, keys=3300, asymmetric_keys=3300),
    "hsm2m.medium": HsmTypeLimits(users=1024, keys=16666, asymmetric_keys=3333),
}
DEFAULT_HSM_TYPE = "hsm2m.medium"
