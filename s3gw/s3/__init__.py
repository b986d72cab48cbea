"""The S3 protocol: route (method, path, query) -> operation, authenticate, run it, answer.

Where things are (one hop from here):

* ``service.py``: ``S3Service.handle``, the HTTP server's single entry handler;
  ``context.py``: what operations are given; ``resolve.py``: which bucket, file,
  version or upload a request names; ``payload.py``: request bodies
  (aws-chunked, chunk signatures); ``translate.py``: lower errors -> S3 errors.
* ``wire/`` (pure): endpoints and router, XML in and out, aws-chunked, ranges,
  dates, names, stored headers, conditions, multipart planning, the error table.
* ``auth/`` (pure): SigV2, SigV4 (header, presigned, streaming chunks), roles.
* ``ops/``: the handlers, one module per resource (``buckets``, ``acl``,
  ``listing``, ``versions``, ``put``, ``get``, ``delete``, ``copy``,
  ``multipart``); ``ops.HANDLERS`` maps each AWS operation name to its handler.
"""
