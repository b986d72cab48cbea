"""Compiled extensions built from ``_native/*.pyx`` (see setup.py).

Nothing here is imported directly by the rest of s3gw: ``s3gw.store.chunker``
and ``s3gw.store.hashing`` pick the compiled module or its pure-Python twin.
"""
