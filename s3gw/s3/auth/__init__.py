"""S3 authentication, pure: SigV2 and SigV4 (header, presigned, streaming chunk
signatures) and the role checks of an authenticated caller.

Nothing here does I/O, imports trio or reads a clock (``tests/unit/test_layers.py``).
"""
