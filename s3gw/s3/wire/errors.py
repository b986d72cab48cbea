"""The S3 error vocabulary: one table of codes, statuses and messages.

Theory of operation
-------------------
Every client-visible failure of the S3 layer is an :class:`S3Error`.  It is
built from a *code* (the string AWS documents, e.g. ``NoSuchKey``); the HTTP
status and the default message come from the single table ``ERRORS`` below,
so a code can never be sent with the wrong status.  Optional *extra fields*
(``key=``, ``bucket_name=``, ``region=``, ``range_requested=`` ...) become
extra XML elements, named by CamelCasing the keyword (``bucket_name`` ->
``<BucketName>``), in the order they were given.

:func:`error_xml` renders the document S3 sends::

    <?xml version="1.0" encoding="UTF-8"?>
    <Error><Code>..</Code><Message>..</Message>[extras]<Resource>..</Resource><RequestId>..</RequestId></Error>

Rules (STYLE rule 2): one vocabulary, translated once.  Errors of lower
layers (pfs, ingest, http) are turned into S3 errors by
``s3.translate.to_s3_error``, whose table is keyed by the exception classes
themselves (this module stays pure and imports nothing below it); anything
unknown becomes ``InternalError`` whose message never contains the exception
text (the request id lets an operator find the traceback in the log).

Known weaknesses: responses with status 304 (``NotModified``) and responses
to HEAD carry no body; the caller must drop the document in those cases
(:attr:`S3Error.has_body` says so for 304).
"""

from __future__ import annotations

from ._xmltext import xml_text as _escape

__all__ = [
    "ERRORS",
    "S3Error",
    "error_xml",
    "status_of",
]

# code -> (HTTP status, default message).  Messages follow the AWS error
# reference in substance.
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AccessForbidden": (403, "CORSResponse: CORS is not enabled for this bucket."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (
        400,
        "Error parsing the query-string authentication parameters.",
    ),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BadRequest": (400, "Bad Request"),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    # s3gw's own: a chunk of the object is damaged or missing on disk (see
    # docs/failure-model.md).  A 5xx so clients retry a few times (a re-upload or
    # `s3gw fsck --repair` heals it), not InternalError: nothing is wrong with s3gw.
    "DataDamaged": (
        503,
        "The stored data of this object is damaged; it cannot be served until it is "
        "uploaded again or repaired (s3gw fsck --repair).",
    ),
    # s3gw's own (MinIO answers the same with 507 XMinioStorageFull): the data folder's
    # disk, or the database, is full.  Nothing of the request was kept; retrying does not
    # help until space is freed (s3gw gc, a bigger disk), so not a retried 503.
    "InsufficientStorage": (
        507,
        "The store has no space left for this request; nothing of it was kept. Free space "
        "(s3gw gc) or grow the disk, then retry.",
    ),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "ExpiredToken": (400, "The provided token has expired."),
    "IllegalVersioningConfigurationException": (
        400, "The versioning configuration specified in the request is invalid."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS access key ID you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidObjectState": (403, "The operation is not valid for the current state of the object."),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found. The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedACLError": (
        400,
        "The XML you provided was not well-formed or did not validate against our published "
        "schema.",
    ),
    "MalformedTrailerError": (
        400,
        "The request contained trailing data that was not well-formed or did not conform "
        "to our published schema.",
    ),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingRequestBodyError": (400, "Request Body is empty."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchBucketPolicy": (404, "The specified bucket does not have a bucket policy."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist."),
    "NoSuchTagSet": (404, "The TagSet does not exist."),
    "NoSuchUpload": (
        404,
        "The specified multipart upload does not exist. The upload ID might not be valid, "
        "or the multipart upload might have been aborted or completed.",
    ),
    "NoSuchVersion": (
        404,
        "The version ID specified in the request does not match an existing version.",
    ),
    "NotImplemented": (
        501,
        "A header or query you provided requested a function that is not implemented.",
    ),
    "NotModified": (304, "Not Modified"),
    "OperationAborted": (
        409,
        "A conflicting conditional operation is currently in progress against this resource. "
        "Try again.",
    ),
    "PreconditionFailed": (
        412,
        "At least one of the preconditions you specified did not hold.",
    ),
    "RequestHeaderSectionTooLarge": (
        400,
        "Your request header section exceeds the maximum allowed size.",
    ),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
}

def status_of(code: str) -> int:
    """Return the HTTP status for *code* (500 for a code not in the table)."""
    entry = ERRORS.get(code)
    return entry[0] if entry else 500


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class S3Error(Exception):
    """An S3 error response.

    Args:
        code: an AWS error code present in :data:`ERRORS`.
        message: overrides the table's default message (no secrets, no
            exception text: it goes to the client verbatim).
        resource: overrides the ``Resource`` passed to :func:`error_xml`.
        headers: extra response headers (e.g. ``x-amz-bucket-region``).
        **fields: extra XML elements, ``snake_case`` keyword -> ``CamelCase``
            element; ``None`` values are dropped.

    Raises:
        KeyError: *code* is not in the table (a programming error).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: object,
    ) -> None:
        status, default = ERRORS[code]
        self.code = code
        self.status = status
        self.message = default if message is None else message
        self.resource = resource
        self.headers = dict(headers or {})
        self.fields: dict[str, str] = {
            _camel(k): str(v) for k, v in fields.items() if v is not None
        }
        super().__init__(f"{code}: {self.message}")

    @property
    def has_body(self) -> bool:
        """False for statuses that must not carry a body (304)."""
        return self.status not in (204, 304)

    def __getattr__(self, name: str) -> str | None:
        # e.g. err.key, err.bucket_name; only called for missing attributes.
        fields = self.__dict__.get("fields")
        if fields is None or name.startswith("_"):
            raise AttributeError(name)
        return fields.get(_camel(name))

    def __repr__(self) -> str:
        return f"S3Error({self.code!r}, {self.message!r}, {self.fields!r})"


def error_xml(err: S3Error, resource: str, request_id: str) -> bytes:
    """Render *err* as the S3 error document (UTF-8 bytes).

    Args:
        err: the error.
        resource: the request path (``/bucket/key``) unless ``err.resource``
            overrides it.
        request_id: the request's id, also sent as ``x-amz-request-id``.

    Returns:
        The XML document; all text is escaped.
    """
    res = err.resource if err.resource is not None else resource
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>',
        _escape(err.code),
        "</Code><Message>",
        _escape(err.message),
        "</Message>",
    ]
    for name, value in err.fields.items():
        parts.append(f"<{name}>{_escape(value)}</{name}>")
    parts.append(f"<Resource>{_escape(res)}</Resource>")
    parts.append(f"<RequestId>{_escape(request_id)}</RequestId></Error>")
    return "".join(parts).encode("utf-8", "replace")
