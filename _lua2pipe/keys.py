"""DNSSEC key tags of the private keys a lua2 script returns from ``dns_get_domain_keys``.

CMD ``keys`` identifies each key by its key tag (RFC 4034 appendix B: what ``pdnsutil
show-zone`` and DS records show) and by a digest of its content that never reveals it. pdns
stores keys in BIND's Private-key-format (``Algorithm:``, then base64 fields), as
``pdns/dnssecinfra.cc`` DNSCryptoKeyEngine::makeFromISCString reads them. The public key is
derived with ``cryptography`` and turned into the DNSKEY with dnspython's ``dns.dnssec``
(the ``dnspython[dnssec]`` extra), as dnspython itself does when signing.

Importing this module loads ``cryptography``: only the ``keys`` command pays for it.
"""

from __future__ import annotations

import base64
import hashlib

import dns.dnssec
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

#: The DNSSEC algorithm numbers of RSA keys (RSASHA1, RSASHA1-NSEC3-SHA1, RSASHA256, RSASHA512).
RSA_ALGORITHMS = (5, 7, 8, 10)

#: The curve of each ECDSA algorithm (RFC 6605).
ECDSA_CURVES = {13: ec.SECP256R1, 14: ec.SECP384R1}


def private_key_fields(content: str) -> dict[str, str]:
    """The ``Name: value`` fields of a Private-key-format key, names lower-cased."""
    fields = {}
    for line in content.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            fields[name.strip().lower()] = value.strip()
    return fields


def public_key(algorithm: int, fields: dict[str, str]) -> dns.dnssec.PublicKey | None:
    """The public half of a Private-key-format key of ``algorithm``; None for an algorithm
    without a public key derivation here. Raises KeyError or ValueError for a malformed key."""

    def number(name: str) -> int:
        return int.from_bytes(base64.b64decode(fields[name]), "big")

    if algorithm in RSA_ALGORITHMS:  # the private key format carries the public numbers
        return rsa.RSAPublicNumbers(number("publicexponent"), number("modulus")).public_key()
    if algorithm in ECDSA_CURVES:
        return ec.derive_private_key(number("privatekey"), ECDSA_CURVES[algorithm]()).public_key()
    if algorithm == 15:
        seed = base64.b64decode(fields["privatekey"])
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    if algorithm == 16:
        seed = base64.b64decode(fields["privatekey"])
        return ed448.Ed448PrivateKey.from_private_bytes(seed).public_key()
    return None


def key_fingerprint(flags: int, content: str) -> tuple[int | None, int | None]:
    """(algorithm, key tag) of a key's Private-key-format content and DNSKEY ``flags``; None
    for what cannot be read (the tag of an algorithm not handled here included)."""
    fields = private_key_fields(content)
    try:
        algorithm = int(fields.get("algorithm", "").split()[0])
    except (ValueError, IndexError):
        return None, None
    try:
        key = public_key(algorithm, fields)
        if key is None:
            return algorithm, None
        dnskey = dns.dnssec.make_dnskey(key, algorithm, flags & 0xFFFF)
    except (KeyError, ValueError):  # a field missing, bad base64, a key off its curve ...
        return algorithm, None
    return algorithm, dns.dnssec.key_id(dnskey)


def content_digest(content: str) -> str:
    """The first 16 hex digits of the SHA-256 of a key's content: names a key, reveals nothing."""
    return hashlib.sha256(content.encode("utf-8", "surrogateescape")).hexdigest()[:16]
