"""Bytes in, values out: strict DAG-CBOR, CIDs and CAR files. No I/O beyond streams passed in."""
