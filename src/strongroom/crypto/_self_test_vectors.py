"""The longer known answers of the asymmetric self-tests (:mod:`strongroom.crypto.self_test`),
each copied from a published vector file of the ``cryptography_vectors`` package (50.0.2), the
test-vector set of pyca/cryptography. The SHA-256s of public keys and the RSA primes were
computed once from the published values, as said below; no value came from the code it checks
(tests/crypto/test_self_test_vectors.py derives them all again from the files).

* RSA PKCS#1 v1.5 (NIST CAVS 11.4, FIPS 186-2 ``SigGen15_186-2.txt``, ``[mod = 2048]``, the
  first ``SHAAlg = SHA256`` case): the file gives n, e = 65537 and d; the primes p > q were
  recovered from them once with ``rsa_recover_prime_factors`` (p·q = n was checked).
  ``RSA_SIGNATURE`` is the file's S for ``RSA_MESSAGE``.
* ML-DSA-44 (``asymmetric/MLDSA/kat_MLDSA_44_det_pure.rsp``, count 0): the key-generation seed
  ξ, the SHA-256 of the file's public key ``pk``, and a signature from the file's ``sm`` (its
  first 2,420 bytes; the rest is the message) over ``msg`` with the 16-byte context ``ctx``.
* ML-KEM-768 (``asymmetric/MLKEM/kat_MLKEM_768.rsp``, count 0): the seed d ‖ z, the SHA-256 of
  the file's ``pk``, and its ciphertext ``ct`` with the shared secret ``ss`` it decapsulates to.
"""

from __future__ import annotations

import base64

RSA_P = int(
    (
        "f55608a0bbf228a3cac2075fcd51cee8dd66fe482592b5bc43052d21f2a585a9e662c4d2f8c31b9983c56aea"
        "0ee6065c2b7dba1b9e4c0b25c258c0ba29f9a20d832d8140c131778f7a5371cc8d02ea0b0827fa9e48b89044"
        "6289fb9dc266b0e1126047d25e68b603e6c7b47070847dc829e431ba4b46f5b0ae47a9f54c6df2ab"
    ),
    16,
)

RSA_Q = int(
    (
        "ea758d47882feccf4826a11d4e808fa02138144caf142e3591d7e25c91b8dec869145dd9ce604bdaad61a9d5"
        "b59f34ab151741638730ecc38df0711dfa70da6cb58ddba0bae1fa3561f2f20ae3a85a711a05828288109eb6"
        "9b1226b12f057c5e554ad041539df3b5558d59c062a5f22f47c9bc9796a0c604e2f936fa5fb3b8db"
    ),
    16,
)

RSA_MESSAGE = bytes.fromhex(
    "6504921a97cd57aa8f3863dc32e1f2d0b57aff63106e59f6afc3f9726b459388bae16b3e224f6aa7f4f471f1"
    "3606eda6e1f1ac2b4df9ef8de921c07c2f4c8598d7a3d6ec4b368cb85ce61a74338221118a303e821c0f277b"
    "591af6795f50c40226127a2efacce4662fd7076c109eb59b18005e7165f6294a6976436ee397774e"
)

RSA_SIGNATURE = bytes.fromhex(
    "335ffadc0b1b8bd2b1eb670dd246e76dcccdc955a1687a15f74aa3e1596ebd43e607c640525f89dda95809cf"
    "d065f1be4e4a249477d24f400d4d4c9438a0af95b26b28b416e42aa950e2a52851b52132048f1b1ce944322f"
    "c99c1aabb49b7fae4c2f0fef674b50adee3bbb5c6c33822b608e4b9577275ca20c710af9fc41b1c01d9c0ff6"
    "f0d8324dc08e1a76e232d8feaa06c73bbf64053bea35f1c528b2722764822ef1ff06246e75a9a22a10da4ea8"
    "4fc2441bea24b35506f8447fcf69093c5d21ab0305cce2c7ea9ffac357c664b491fc55f2919ec490c38accba"
    "b378c252ac2df3845acff575ec7524cd2f586cca1497c74f24b299d6d6254c8cdb1d227d"
)

MLDSA44_SEED = bytes.fromhex("f696484048ec21f96cf50a56d0759c448f3779752f0383d37449690694cf7a68")

MLDSA44_PUBLIC_SHA256 = bytes.fromhex(
    "18288249b90bcbd48d473d2a507cc3c1e95e040f639ac3333a8ed1891de14552"
)

MLDSA44_MESSAGE = bytes.fromhex("6dbbc4375136df3b07f7c70e639e223e")

MLDSA44_CONTEXT = bytes.fromhex("480c658c0cb3e040bde084345cef0df7")

MLDSA44_SIGNATURE = base64.b64decode(
    "58gvyjFVc++MxxYM6V2S+nmsIVIVI94OZwB2ggfpt7n66cvb+Pl7Btee1PXqRRMIbEsGXOkpauDNmxM/ZcMU/O9t"
    "U3sdLXB353m+JMFJ2ChMgvSTewgV1lbkBK1K2H143bxJPGrOeiqrlEYkPzfGTXxEEhIwfQej++JXMZTAt17VXDmK"
    "LGM5hP05clIyD+/9ediS3Qq2yctmHkf+jW52oP9Og6vtWuo/7/kS98WgZzcMoDfYgmD95VsOsyINRKEqOVeLiRzn"
    "lI2z84mw69pyHWZOF5DEC5uBZ8DZygPjWdpKtnWrARsMV6ftVc/YwlDluJBHHB5YHTs+s6bzx5Ijrg6IGIb0/rKF"
    "RChV4QYHCl70Cnp0telb/TFtD9z0ZLOy9wiy2dzWzFZdC1SwfjGe5BOi5DC72FXHTpR3/Abrvc7snHoqwK+HW94B"
    "bGF0LGL0K71Io6UQibMP1aYr93CR7aKc1yJ2XiTvJpO/NGZcsRjZ4H6EbDcDRhAVzxw3/eraBWrZHmfMdxOcjCfF"
    "xsAIlaSKjz1bsLNxntrbm7ZmtlXiGIVenRn6x48Xm/WY994kNzBWkapbjsV/Izen4tHwB9kgCQ6/dluYz3hPJNpP"
    "GQidH437A+Xr5naJjUBnxfxRI4svysz63UeV2WiZtFEJfSdZWSjQ+wtk+xkHOaUdf+Bjzg3ZmnRRDwgMHvT2HNEd"
    "mFnk7VUPbx5Osj8WTeHVr48FD1bqvaFeHVR2bD+9ww9Dz9gXTjyMpidIZe18en0aQQq1FUm1tzbgyC7Zr4JBrYom"
    "Y3jKoGJlMoPnkIUTS024kX98jU2O6UtaQqqBSLafH3GarZ+zFaRnjpH0tLEmjZblCSHHpo1IMu4QGLzayEpGqlIC"
    "HqGuzny4XstXu3BiMd9GtvjVjz0ogLybXUeK+C6vuGG2oPfiZvP/Z8MJK6Mm5tgn529aNMUruCyaBqgmUMngYmw9"
    "vhoKdIv4m8FN/eMxhbBjqSR8WZfi4I6EBKvBjP330v2IcOuNlk/dl8MyW+C7saduwiCqaLQA7OjpWrzZTtwBczmN"
    "L2ut0j4zsnvygnbXZXaB1+X8nxt0FKqw9FuLMUn86JwgAZ5w3gf8MSnf7jXdAZNqtCXD+N7Z1UEqplnCCCG0jPzX"
    "sq3SUa9B3iqJyUFH2Y3pvAwcy4DL0iArHGE082w+S5UzdfQFVBmHwEyAnN9+5CZF8Q6gLxk1Re2Lc7SMdJZQg0Aa"
    "CdzRw5Nmqp8b9SDRkHQZnzuELOmsvFtj6sizg8vfxoUT7zsFxwHC6GzVObQzIRbAHZnPOh5lIoFP648+EGamPebE"
    "gqaEv3bcdnOsd1NC+6WElP07M/42blqmzSb1iT4Oe7SjdtSKTwjcHyOlidnEVXp2/XiCos7Z9YiyJ5vX6WB1JaFt"
    "GwcH8EQjdSGho4o6lWFTuZ32T9OEt61R061/yr2GyNH1PPf7rSepM97Q//53lVM4KGxjToi7Gk7vhKXVZSwBiV/Q"
    "wac93kIAzhHcNW+HZkLmGgo4KvZgxnfWvL6pxaFM7oiV/05ahcPfwKcjbqK2gKfA5FoX4Wp2UMjp/WvBXBKS4o8O"
    "Xk6oi4Urb9GdBWTvaZY8cH0jb1G/inscrtkWVJ4Jx3vhU5jAf6bvoHpZNtvWxJgm3ghtfZ85QWn/TZiN67MuGnYh"
    "wM8NZeJcQZXJ4QkgvRQDcZeOdDM1OxAjnt97O0vOh5nlaDmXBupMPgIej1tYAHtOj5Km9icjTuwm19YrKKwgjtWt"
    "87fcCHv6zBWAAGlyayTlE4HouT2+KnevHoEXqqcTTG7i1BVzXM7WldCZPvGu9G7d4wdA9a5Vuq8gt3PgW8LWqTZV"
    "y642eU3AmklzWSNtBc5l/YLaFzBqUfXE+X1jWBEJupQOflYLC42SJXa+4GhUgexTi+bq4jZ2gE174bJ3VAO8WBat"
    "0l7z1IwVqw66OZEPQpRWbghkNh2XRJw/H0m9jIrK/itbiqSBC80Ria8/v0HHxXKBWL8AuMuTPRVGmpgp68BYw7dj"
    "iVUuFWqFfSQo9gQLOgWw1V8WvrQm3vWwLh2XdBy9DeEWliO1l+oNxvKv2KJZ0prjPmwglA15BsCZkTjKczO0f/JT"
    "6rr5EhU9ylK7IB4R6YqmCyU+fwP8CEVTiF/vioeQlLUsRt4iXxMVpUZOC45sq9XcT+fX/iX1Abf7Ep4U72dTE1pL"
    "44hZFDk1BOmRWYZvWvPm/k3rjZZenqAGQTmOxDF/PKhAPP2EQtiIlKLkEoRkv1fAkxmMaumEAkoXXdrtyzG1xTIB"
    "n+pPj9LT09zGKD+1LKdTg6RmR3esyj/RWLTQgONUao7DPOP6eUd3wDeDiXh2u1Fm3FR0VHBD1i2QrG+BjrtFnRxh"
    "RrtXdpMn8rXzZu4HBh9JxdnVkUrKeQAWKqoar4/ZynK6cqVrGkzkAGUZde3JwgbtTB5YiE5vJGgLZL4aamEUg6cq"
    "fPt//4XINl6ogGh7RoSEAx8Gq0Gedv4+tr+USDFdeBpGuHqz69SQ5r4X94BIgaD2xTVHaY1T1k2HY/NajopFOS9D"
    "saHbzPjnkq33nRGG864dXZ4SEgSxmMweSOqFW5cV2KrUh9wZcIaR9BBItzvtDG9kRoilf553cMfQpSxpQOLY65r3"
    "EB7V2X9et/IuJd12EXU4/CwI/d/GF4ELdkbzTHOPKctj1vrwga7+NLpE3bVhe879Y9CN3UjEPVY9KeYYBHn55dPr"
    "DTwG5wDvVTWxqKwu7FZTgqs15imOoQH/1Kiv1F1kKzJtH7RzKdFsWCCTXO3dYzoB8LWYhD9GFPoN/7gtmvRcaXAa"
    "E43UAIxruoThyx4JQ6yQ+PDmZc/hoVegdaHZpeLxDPFdAbjFV4zAIFavfIh72TYAhYHPhSKQESKmPB/yQE3DGNWj"
    "vUB/iTUcY6Q7Euq5vy+Wmr2Q32o0flkY9qWtyxyXnm2BDkwzTqHd2qNlEg3AxcivFCyzoVeBiMbXW44+2nFan4VH"
    "3W5PFHQIBTLibmturG1YNSDj4f8yNEq57LUFwQNWn+gna8M9H2rCgLG1rAlUm4ywYYD9H68cfxb4GLHrgVEjDe4Q"
    "oQjf0YlaGuH7vmsItZxSbqaZKa6NyGNaXqkQGXaOnby/2foKFxsgKElOcXqWx9bj/QYlUFFSd4KOj8vV6er5/gcS"
    "ISUqPEZQYniMrLi7vdHd4OHw+gAAAAAAAAAAAAAAAAAAAAAAAAAAAAkXJjs="
)

MLKEM768_SEED = bytes.fromhex(
    "6dbbc4375136df3b07f7c70e639e223e177e7fd53b161b3f4d57791794f12624f696484048ec21f96cf50a56"
    "d0759c448f3779752f0383d37449690694cf7a68"
)

MLKEM768_PUBLIC_SHA256 = bytes.fromhex(
    "4bec4730f26273c6319ef7387dd4758315240a9394cd89264b148b9113060b61"
)

MLKEM768_CIPHERTEXT = base64.b64decode(
    "FqYf+EeH/UpfGcpZs2V9s6EGpzKeLWJ0ei74UUkWMQm+//a8sz32YjC49nJc5xn1j3EZbolb78l1TZ8EJJRkjIim"
    "7UxM8T8vr59lHeedrgd3M8sjX53ORIl3/ULVSGt9/fbXvZFysUJHZV008QUk1GlHjZqWOfNNKs3m48BI1Sswi2Yk"
    "X+mijN55g7nRTAOzdxX+OXDNNXNHca3XqptYz7Ct+MYT3q+ysx9uXINk1DNOk6+OSUP6lHzGdmdEfP/QNiNa+up/"
    "YDyy6id7l9rfgup0b2snOW3QjIXP+TBKLlzgVx/eLpJnFryfjk1HS06P00sNwoN2IE6jBtMOmm3YglC3mCPncxny"
    "7zp3cE9And6L622xvkqfJa4uFZOd7fGxGlqlH8/wQGi0bUL7uv0kmCZMyk+3iw8qsWLH71aYdaExSLmksLnaF4fK"
    "CnAz4+yhNHHby74V408rUGW5lf4iHCt6wVAzTRTmjtxeBJZj3jYvro014kwgLF+tIVPNBE6pYqOI8DDNxd7Bw0Ix"
    "g7Fzwysi9YAK5F6OicjuRhfOJOYPJ4v9HqD4+pJIa2+EkSfamb575MZh4romZp1qz2GaMwVoCWg+JKLynjO+f1+a"
    "xmhpfllIjpuGhZVs2Ht8RxCdYDICwgFHLsgp6mSSLk0OrdSktaj7BuD0vyWlnO1UVXOI3NkbOHy2FIWX7fhKIllY"
    "AYUcpLnp4Jb9/JbyRErJ8SR6XmQHh/yiPj6yHsEFnEKmWANEHfASeQE8RI38Pu38M1Xu4fUQCGoRX4VMNtt5eoXt"
    "4ZpHOjPnmoD29/ZGfhsNhm/g5XqKvTeZNKampJL18yWU1D3i7C7qgUh5gbtjlL+m31SY10xtsiAqY0ijJfvJBrjo"
    "ILsAZZou4SdAsUsuNvTF2rQRwM0JbF5juk1Iqp6Ssx9E3JfA/vZhvPTbiV8XRhPZ1e2eg2ZXdF7J3ux68nPOyH7w"
    "6vgF2hvIQBYIgQuKhvlSxjJtCfyNHX/YO06GLgUFjod8BWzFRl7DGSsDpMM8xrFlWNJILV+EUYy7xSaq5uiEAxfv"
    "s6GYLD0XGe8V0Q+LB3xcaGgL5tPZLoaqpus3jPBVnUkyVxR7VXMPSaBCMlrwZrT5dBuf/11Hly1ayvUra+pOnjVO"
    "+USLYvbSoTF2daki4U4xV41sq1oJpxqycNhlFRuKtMYStf1dzJfkVBmhz7a4ua7GD2JgIJj5HwfCOBhmV5Qcehjk"
    "1+4iDwItX//SkYU7nAY+VhtxdveiNc5FvIbORxgIbflTbFpfCr8EwKhNgr32lVKt4xNUM8EKG6adaIlp5tnc5U07"
    "Oq46fyq5BOZX4/sFJB+sEQqgfmLMOZHX0NYym1q51p1zNsDRSFiMnwkhMluF31/TDbgKVqNyQ3IVNkGWGqfgQr8m"
    "Rv9GAiwFnVeUw6S3+QxBDecaUjHdm4O70Oa9qxv55i8="
)

MLKEM768_SECRET = bytes.fromhex("b408d5d115713f0a93047dbbea832e4340787686d59a9a2d106bd662ba0aa035")
