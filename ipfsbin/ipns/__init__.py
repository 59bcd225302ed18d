"""IPNS V2 records for ipfsbin: made and checked in Python, stored and served by Kubo.

A record only points at the newest index commit; trust comes from the
commit's signatures, not from the record (see ``schema/ipns.md``).
"""

from ipfsbin.ipns.name import canonical_name, ipns_path, public_key_from_name
from ipfsbin.ipns.record import (
    DEFAULT_LIFETIME,
    DEFAULT_TTL,
    MAX_RECORD_SIZE,
    SIGNATURE_DOMAIN,
    IpnsRecord,
    best_record,
    create_record,
    format_validity,
    parse_record,
    parse_validity,
    sign_record,
    verify_record,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_TTL",
    "MAX_RECORD_SIZE",
    "SIGNATURE_DOMAIN",
    "IpnsRecord",
    "best_record",
    "canonical_name",
    "create_record",
    "format_validity",
    "ipns_path",
    "parse_record",
    "parse_validity",
    "public_key_from_name",
    "sign_record",
    "verify_record",
]
