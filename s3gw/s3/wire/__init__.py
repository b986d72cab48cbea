"""The S3 wire format, pure: routing, XML in and out, aws-chunked, ranges, dates, names,
stored headers, conditions, multipart planning and the error vocabulary.

Nothing here does I/O, imports trio or reads a clock (``tests/unit/test_layers.py``).
"""
