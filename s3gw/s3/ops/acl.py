"""ACLs: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

With auth off the answers are canned (the owner has FULL_CONTROL) and a PUT
changes nothing (a malformed one is still refused); with auth on, a bucket's ACL is its repo's roles
(``put_bucket_acl``, ``s3.auth.access``).  An object's ACL is always the
canned owner-only one.
"""

from __future__ import annotations

from ...http import Request, Response
from ...pfs.roles import AuthStoreError, Role
from ..auth.access import acl_grants, grant_headers, policy_roles
from ..context import OWNER, PRINCIPAL, Context
from ..payload import read_small_body
from ..resolve import existing_bucket, resolve_file
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.names import validate_key
from ..wire.object_headers import check_acl, stored_headers
from ..wire.xml_in import parse_access_control_policy


async def get_bucket_acl(svc: Context, req: Request, r) -> Response:
    """With auth on, the repo's roles as grants (reader READ, writer WRITE, owner
    FULL_CONTROL); otherwise the canned owner-only answer."""
    ref = await svc.run(existing_bucket, svc, r.bucket)
    grants = None
    if PRINCIPAL.get() is not None:
        grants = acl_grants(await svc.run(svc.auth.grants, None, ref.repo))
    return Response(200, [("content-type", "application/xml")], s3xml.access_control_policy(OWNER, grants))


async def put_bucket_acl(svc: Context, req: Request, r) -> Response:
    """How an owner grants roles over S3 (auth on; with auth off there are no roles and
    nothing changes).  One of, as S3 allows only one per request:

    * ``x-amz-grant-read`` / ``-write`` / ``-full-control: id="user"`` headers, or
    * an ``AccessControlPolicy`` body (CanonicalUser IDs are user names; a policy
      read with GetBucketAcl and sent back unchanged, as s3cmd does, changes nothing),

    *replace* the repo's roles; the caller stays owner.  The canned ``private``
    keeps the owners only; the other canned ACLs (public and group access) are
    ``InvalidArgument``, like group grantees: refused, not ignored, so an owner
    revoking access is never told it worked when it did not.
    """
    ref = await svc.run(existing_bucket, svc, r.bucket)
    canned = req.headers.get("x-amz-acl")
    check_acl(canned)
    principal = PRINCIPAL.get()
    roles = grant_headers(req.headers)
    body = bytes(await read_small_body(req, limit=64 * 1024))
    given = [roles is not None, canned is not None, bool(body.strip())]
    if sum(given) > 1:
        raise S3Error("InvalidRequest", "Give a canned ACL, x-amz-grant-* headers or an "
                                        "AccessControlPolicy body: only one of them.")
    if principal is None:
        # auth off: no roles to change, but a malformed request is refused as with auth on
        if given[2]:
            policy_roles(parse_access_control_policy(body), OWNER.id)
        return Response(200, [], b"")
    if canned is not None:
        if canned.strip() != "private":
            raise S3Error("InvalidArgument", f"x-amz-acl: {canned.strip()} is not supported: "
                          "s3gw grants roles to its users only (no public or group access).",
                          argument_name="x-amz-acl", argument_value=canned.strip())
        current = await svc.run(svc.auth.grants, None, ref.repo)
        roles = {g.user: g.role for g in current if g.role == Role.OWNER}
    elif given[2]:
        roles = policy_roles(parse_access_control_policy(body), OWNER.id)
    if roles is not None:
        if not principal.admin:
            roles[principal.user] = Role.OWNER
        try:
            await svc.run(svc.auth.set_repo_grants, ref.repo, roles)
        except AuthStoreError as exc:
            raise S3Error("InvalidArgument", str(exc), argument_name="x-amz-grant-*") from None
    return Response(200, [], b"")



# -- object ACLs: canned, no effect --------------------------------------------------------
async def get_object_acl(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    await svc.run(resolve_file, svc, ref, validate_key(r.key))
    return Response(200, [("content-type", "application/xml")], s3xml.access_control_policy(OWNER))


async def put_object_acl(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    await read_small_body(req, limit=64 * 1024)
    stored_headers(req.headers)  # validates a canned x-amz-acl
    await svc.run(resolve_file, svc, ref, validate_key(r.key))
    return Response(200, [], b"")
