"""Who is asking, and may they: request authentication and per-repo authorisation (pure).

Theory of operation
-------------------
:func:`authenticate` picks the signature scheme a request uses and verifies
it with :mod:`s3gw.s3.auth.sigv4` / :mod:`s3gw.s3.auth.sigv2`:

====================================  =================================
``Authorization: AWS4-HMAC-SHA256 …``  SigV4 header (any region in the scope)
``?X-Amz-Algorithm=…&X-Amz-Signature``  SigV4 presigned URL (at most 7 days)
``Authorization: AWS AKID:sig``         SigV2 header (s3cmd fallback, rclone v2_auth)
``?AWSAccessKeyId=…&Signature=…``       SigV2 presigned URL (aws cli / boto3 default)
none of these                           anonymous: ``AccessDenied``
====================================  =================================

It returns a :class:`Principal`: the user, whether it is an admin, and, for
a SigV4 header, the verified :class:`~s3gw.s3.auth.sigv4.Identity` from which the
body reader builds the chunk-signature verifier of a streaming upload.  The
payload itself is checked later, as it streams (hex ``x-amz-content-sha256``
against the decoded body, chunk signatures chunk by chunk), always before
the commit.

:func:`required_role` says which role an operation needs on its bucket's
repo; :func:`authorize` checks it against an :class:`~s3gw.pfs.auth.AuthSnapshot`:

* reader: every READ endpoint (list, get, head, versions, ACL reads);
* writer: every WRITE endpoint (objects, multipart, copies into the repo,
  a new branch of an existing repo);
* owner: DeleteBucket and PutBucketAcl (the repo's administration);
* admins may do everything; ListBuckets and CreateBucket of a *new* repo
  need only a valid signature (the operations filter / claim ownership).

The copy source of CopyObject / UploadPartCopy needs reader on its repo.
Everything refused is ``AccessDenied`` (403), never a hint of what exists;
the one exception (``S3Service.handle``): a bucket of a repo that does not
exist and has no roles granted is ``NoSuchBucket`` (404), as S3 answers, which
tells no more than a CreateBucket of it would.

Pure: the caller passes ``now`` and the snapshot; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...pfs.roles import AuthSnapshot, Role
from ..wire.endpoints import READ, SERVICE, Endpoint
from ..wire.errors import S3Error
from ..wire.names import parse_bucket, parse_copy_source
from . import sigv2, sigv4

__all__ = ["Principal", "acl_grants", "authenticate", "authorize", "grant_headers",
           "may_create_branch", "may_read", "required_role", "scheme_of"]

HEADER_V4, HEADER_V2, QUERY_V4, QUERY_V2, ANONYMOUS = "V4", "V2", "V4-QUERY", "V2-QUERY", "ANONYMOUS"

# Endpoints that need more than their access class says.
_OWNER_ONLY = frozenset({"DeleteBucket", "PutBucketAcl"})
_SIGNED_ONLY = frozenset({"ListBuckets", "CreateBucket"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Attributes:
        user: the user name the key belongs to.
        admin: the user is an admin (every repo, every operation).
        access_key: the access key used.
        scheme: HEADER_V4, QUERY_V4, HEADER_V2 or QUERY_V2.
        sigv4: the verified SigV4 identity (header auth only), for the
            streaming chunk-signature chain; ``None`` otherwise.
    """

    user: str
    admin: bool
    access_key: str
    scheme: str
    sigv4: sigv4.Identity | None = None


def _query_names(raw_query: str) -> set[str]:
    return {item.partition("=")[0] for item in raw_query.split("&") if item}


_QUERY_AUTH = frozenset({"X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential", "Signature",
                         "AWSAccessKeyId"})


def scheme_of(headers: Any, raw_query: str) -> str:
    """Which signature scheme the request uses (no verification)."""
    auth = (headers.get("authorization") or "").lstrip()
    if auth.startswith(sigv4.ALGORITHM):
        return HEADER_V4
    if auth.startswith("AWS "):
        return HEADER_V2
    if auth:
        return HEADER_V4  # unknown scheme: let the V4 parser name what is wrong
    names = _query_names(raw_query)
    if "X-Amz-Algorithm" in names or "X-Amz-Signature" in names or "X-Amz-Credential" in names:
        return QUERY_V4
    if "AWSAccessKeyId" in names or "Signature" in names:
        return QUERY_V2
    return ANONYMOUS


def authenticate(method: str, raw_path: str, raw_query: str, headers: Any,
                 snapshot: AuthSnapshot, now: float, *, vhost_bucket: str | None = None) -> Principal:
    """Verify the request's signature against the keys in *snapshot*.

    Args:
        method, raw_path, raw_query, headers: the request as received.
        snapshot: the auth store's current view (auth enabled).
        now: server time, epoch seconds.
        vhost_bucket: the bucket named by the Host header (virtual-host style).

    Returns:
        The :class:`Principal`.

    Raises:
        S3Error: ``AccessDenied`` (anonymous, expired presigned URL),
            ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``,
            ``RequestTimeTooSkewed``, ``AuthorizationHeaderMalformed``,
            ``AuthorizationQueryParametersError``, ``InvalidArgument``.
    """
    scheme = scheme_of(headers, raw_query)
    lookup = snapshot.secret
    identity = None
    if scheme == ANONYMOUS:
        raise S3Error("AccessDenied", "Anonymous access is not allowed: sign the request.")
    if scheme in (HEADER_V4, HEADER_V2) and not _QUERY_AUTH.isdisjoint(_query_names(raw_query)):
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the "
                      "X-Amz-Algorithm query parameter, Signature query string parameter or "
                      "the Authorization header should be specified",
                      argument_name="Authorization")
    if scheme == HEADER_V4:
        identity = sigv4.verify_header_auth(method, raw_path, raw_query, headers, lookup, now)
        access_key = identity.access_key
    elif scheme == QUERY_V4:
        ident = sigv4.verify_presigned(method, raw_path, raw_query, headers, lookup, now)
        access_key = ident.access_key
    elif scheme == HEADER_V2:
        access_key = sigv2.verify_header_auth(method, raw_path, raw_query, headers, lookup, now,
                                              vhost_bucket=vhost_bucket).access_key
    else:
        access_key = sigv2.verify_presigned(method, raw_path, raw_query, headers, lookup, now,
                                            vhost_bucket=vhost_bucket).access_key
    user = snapshot.user_of(access_key)
    if user is None:  # revoked between lookup and here cannot happen on one snapshot
        raise S3Error("InvalidAccessKeyId", **{"AWSAccessKeyId": access_key})
    return Principal(user, snapshot.is_admin(user), access_key, scheme, identity)


def required_role(endpoint: Endpoint) -> Role | None:
    """The role *endpoint* needs on its bucket's repo (None: a valid signature is enough)."""
    if endpoint.scope == SERVICE or endpoint.name in _SIGNED_ONLY:
        return None
    if endpoint.name in _OWNER_ONLY:
        return Role.OWNER
    return Role.READER if endpoint.access == READ else Role.WRITER


def _deny(principal: Principal) -> S3Error:
    return S3Error("AccessDenied", f"User {principal.user} is not allowed to do this.")


def authorize(principal: Principal, snapshot: AuthSnapshot, endpoint: Endpoint,
              bucket: str | None, headers: Any) -> None:
    """Check that *principal* may run *endpoint* on *bucket*.

    CreateBucket is checked by the operation (it depends on whether the
    repo exists: :func:`may_create_branch`); ListBuckets filters its result.

    Raises:
        S3Error: ``AccessDenied``; ``InvalidBucketName`` / ``InvalidArgument``
            for a malformed bucket or copy source.
    """
    if principal.admin:
        return
    needed = required_role(endpoint)
    if needed is not None and bucket:
        if not snapshot.may(principal.user, parse_bucket(bucket).repo, needed):
            raise _deny(principal)
    if endpoint.name in _COPIES:
        source = parse_copy_source(headers.get("x-amz-copy-source") or "")
        if not snapshot.may(principal.user, parse_bucket(source.bucket).repo, Role.READER):
            raise _deny(principal)


def may_create_branch(principal: Principal, snapshot: AuthSnapshot, repo: str,
                      repo_exists: bool) -> bool:
    """CreateBucket: a new repo needs only a signature; a new branch needs writer, and so
    does a new repo that an administrator granted roles on before it existed."""
    return (principal.admin or (not repo_exists and not snapshot.granted(repo))
            or snapshot.may(principal.user, repo, Role.WRITER))


def may_read(principal: Principal, snapshot: AuthSnapshot, repo: str) -> bool:
    """ListBuckets shows the buckets of the repos the caller may read."""
    return principal.admin or snapshot.may(principal.user, repo, Role.READER)


# --------------------------------------------------------------------------
# bucket ACLs: how an owner grants roles over S3

GRANT_HEADERS = {"x-amz-grant-read": Role.READER, "x-amz-grant-write": Role.WRITER,
                 "x-amz-grant-full-control": Role.OWNER}
PERMISSIONS = {Role.READER: "READ", Role.WRITER: "WRITE", Role.OWNER: "FULL_CONTROL"}


def grant_headers(headers: Any) -> dict[str, Role] | None:
    """The roles a PutBucketAcl's ``x-amz-grant-*`` headers give, or None if it has none.

    ``x-amz-grant-read: id="alice", id="bob"`` -> reader, ``-write`` -> writer,
    ``-full-control`` -> owner (a user named twice gets the higher role).  The
    grantee id is an s3gw user name.

    Raises:
        S3Error: ``InvalidArgument`` for a grantee that is not ``id=…``
            (email and group grantees have no meaning here), or for the ACL
            permissions s3gw has no role for (``read-acp``, ``write-acp``).
    """
    for name in ("x-amz-grant-read-acp", "x-amz-grant-write-acp"):
        if headers.get(name) is not None:
            raise S3Error("InvalidArgument", f"{name} is not supported: grant a role instead.",
                          argument_name=name, argument_value=headers.get(name))
    roles: dict[str, Role] = {}
    seen = False
    for name, role in GRANT_HEADERS.items():
        value = headers.get(name)
        if value is None:
            continue
        seen = True
        for item in value.split(","):
            kind, eq, grantee = item.strip().partition("=")
            grantee = grantee.strip().strip('"')
            if kind.strip().lower() != "id" or not eq or not grantee:
                raise S3Error("InvalidArgument", "Grantees must be given as id=\"<user>\".",
                              argument_name=name, argument_value=value)
            roles[grantee] = max(role, roles.get(grantee, role))
    return roles if seen else None


ROLE_OF_PERMISSION = {permission: role for role, permission in PERMISSIONS.items()}


def policy_roles(grants: list[tuple[str, str, str]], owner_id: str) -> dict[str, Role]:
    """The roles an AccessControlPolicy body gives (``xmlparse.parse_access_control_policy``).

    A ``CanonicalUser`` grantee's ID is an s3gw user name: READ -> reader, WRITE ->
    writer, FULL_CONTROL -> owner (a user named twice gets the higher role).  The
    entry GetBucketAcl lists for the store itself (``owner_id``) is skipped, so a
    policy read with GetBucketAcl and sent back unchanged changes nothing.

    Raises:
        S3Error: ``InvalidArgument`` for group and e-mail grantees (s3gw grants
            roles to its users only) and for READ_ACP / WRITE_ACP.
    """
    roles: dict[str, Role] = {}
    for kind, grantee, permission in grants:
        if kind != "CanonicalUser":
            raise S3Error("InvalidArgument", f"{kind} grantees are not supported: s3gw grants "
                          "roles to its users (CanonicalUser ID = user name).",
                          argument_name="Grantee", argument_value=grantee)
        if grantee == owner_id:
            continue
        role = ROLE_OF_PERMISSION.get(permission)
        if role is None:
            raise S3Error("InvalidArgument", f"Permission {permission} is not supported: "
                          "grant READ, WRITE or FULL_CONTROL.",
                          argument_name="Permission", argument_value=permission)
        roles[grantee] = max(role, roles.get(grantee, role))
    return roles


def acl_grants(grants: Any) -> list[tuple[str, str]]:
    """``(user, permission)`` pairs for GetBucketAcl, from ``Grant`` records."""
    return [(g.user, PERMISSIONS[g.role]) for g in grants]
