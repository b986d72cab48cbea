"""``s3gw auth``: turn authentication on, manage keys and per-repo roles.

Commands work on the auth store directly: ``<data>/auth.sqlite`` for a folder with
SQLite metadata, the PostgreSQL database for a folder served with ``--meta
postgresql://...`` (its ``metadata.url``) or with ``--meta`` given here.  A running
server follows the changes without a restart: SQLite within 50 ms, PostgreSQL on every
gateway of the database within milliseconds (at most 0.1 s; ``pfs.postgres_auth``)::

    s3gw auth enable                      # prints the first admin's key, once
    s3gw auth disable | status
    s3gw auth key create --user NAME [--admin] [--token]
    s3gw auth key list [--user NAME]
    s3gw auth key revoke ACCESS_KEY
    s3gw auth grant --user NAME --repo REPO --role reader|writer|owner
    s3gw auth revoke --user NAME --repo REPO
    s3gw auth grants [--user NAME] [--repo REPO]
    s3gw auth import                      # the folder's auth.sqlite -> its PostgreSQL database

Whoever can write the data folder (or the database) is its administrator; these
commands need no credentials.  ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import json
import sys
import time

__all__ = ["add_parser", "run"]


def add_parser(sub, data_arg) -> None:
    p = sub.add_parser("auth", help="authentication: enable, keys, per-repo roles")
    asub = p.add_subparsers(dest="auth_command", required=True)

    def cmd(name, help_text):
        q = asub.add_parser(name, help=help_text)
        data_arg(q)
        q.add_argument("--json", action="store_true", help="machine-readable output")
        return q

    cmd("enable", "turn auth on; print the first admin's credentials once")
    cmd("disable", "turn auth off (credentials are then ignored)")
    cmd("status", "print enabled or disabled")

    key = asub.add_parser("key", help="access keys")
    ksub = key.add_subparsers(dest="key_command", required=True)
    q = ksub.add_parser("create", help="create a key (and the user, if new); prints it once")
    data_arg(q)
    q.add_argument("--user", required=True)
    q.add_argument("--admin", action="store_true", help="make the user an admin")
    q.add_argument("--token", action="store_true",
                   help="Pachyderm-style token: access key and secret are both the token "
                        "(sent in clear over plain HTTP)")
    q.add_argument("--json", action="store_true")
    q = ksub.add_parser("list", help="list keys (never their secrets)")
    data_arg(q)
    q.add_argument("--user")
    q.add_argument("--json", action="store_true")
    q = ksub.add_parser("revoke", help="revoke a key (its access key, listed id or token)")
    data_arg(q)
    q.add_argument("access_key")
    q.add_argument("--json", action="store_true")

    q = cmd("grant", "give a user a role on a repo")
    q.add_argument("--user", required=True)
    q.add_argument("--repo", required=True)
    q.add_argument("--role", required=True, choices=["reader", "writer", "owner"])
    q = cmd("revoke", "take a user's role on a repo away")
    q.add_argument("--user", required=True)
    q.add_argument("--repo", required=True)
    q = cmd("grants", "list roles")
    q.add_argument("--user")
    q.add_argument("--repo")
    cmd("import", "copy the data folder's own auth.sqlite (users, keys, roles, enabled) into "
                  "its PostgreSQL database, where the gateways keep auth (see docs/backends.md)")


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def _print_credentials(args, creds) -> None:
    if args.json:
        print(json.dumps({"user": creds.user, "access_key": creds.access_key,
                          "secret_key": creds.secret_key, "kind": creds.kind}))
        return
    print(f"user:       {creds.user}")
    print(f"access key: {creds.access_key}")
    print(f"secret key: {creds.secret_key}")
    if creds.kind == "token":
        print("(a token: use it as both access key and secret; it is not shown again)")
    else:
        print("(the secret is not shown again)")


def run(args) -> int:
    from ..pfs.backends import local_auth_pending, open_auth_store
    from ..pfs.roles import AuthStoreError
    from .metastore import meta_error

    try:
        if args.auth_command == "import":
            return _import(args)
        store = open_auth_store(args.data, getattr(args, "meta", None))
    except AuthStoreError as exc:
        print(f"s3gw auth: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        reason = meta_error(exc) or (str(exc) if isinstance(exc, ValueError) else None)
        if reason is None:
            raise
        print(f"s3gw: {reason}", file=sys.stderr)
        return 1
    try:
        pending = local_auth_pending(args.data, getattr(args, "meta", None))
        if pending is not None:
            print(f"s3gw auth: note: {pending}", file=sys.stderr)
        return _run(args, store)
    except AuthStoreError as exc:
        print(f"s3gw auth: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _import(args) -> int:
    """``s3gw auth import`` (``pfs.backends.import_local_auth``)."""
    from ..pfs.backends import import_local_auth
    r = import_local_auth(args.data, getattr(args, "meta", None))
    if args.json:
        print(json.dumps(r))
    else:
        print(f"imported {args.data}'s auth.sqlite into {r['where']}: {r['users']} user(s), "
              f"{r['keys']} key(s), {r['grants']} role(s) added, {r['revoked']} key(s) "
              f"revoked; auth {'enabled' if r['enabled'] else 'disabled'} there")
        print(f"the file is now {r['moved_to']}")
    return 0


def _run(args, store) -> int:
    command = args.auth_command
    if command == "enable":
        creds = store.enable()
        if not args.json:
            print(f"auth enabled for {getattr(store, 'where', args.data)}")
        _print_credentials(args, creds)
    elif command == "disable":
        store.disable()
        print("auth disabled")
    elif command == "status":
        print("enabled" if store.enabled else "disabled")
    elif command == "key":
        _run_key(args, store)
    elif command == "grant":
        g = store.grant(args.user, args.repo, args.role)
        print(json.dumps({"user": g.user, "repo": g.repo, "role": g.role.label}) if args.json
              else f"{g.user}: {g.role.label} on {g.repo}")
    elif command == "revoke":
        if not store.revoke(args.user, args.repo):
            print(f"s3gw auth: {args.user} has no role on {args.repo}", file=sys.stderr)
            return 1
        print(f"{args.user}: no role on {args.repo}")
    elif command == "grants":
        rows = [{"user": g.user, "repo": g.repo, "role": g.role.label}
                for g in store.grants(args.user, args.repo)]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print(f"{row['repo']:<24} {row['user']:<24} {row['role']}")
    return 0


def _run_key(args, store) -> None:
    if args.key_command == "create":
        _print_credentials(args, store.create_key(args.user, admin=args.admin, token=args.token))
    elif args.key_command == "list":
        admins = {name for name, admin in store.users() if admin}
        rows = [{"access_key": k.access_key, "user": k.user, "kind": k.kind,
                 "admin": k.user in admins, "created": _iso(k.created_ns),
                 "revoked": _iso(k.revoked_ns)} for k in store.list_keys(args.user)]
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                state = f"revoked {r['revoked']}" if r["revoked"] else "active"
                print(f"{r['access_key']:<24} {r['user']:<16} {r['kind']:<6} "
                      f"{'admin ' if r['admin'] else ''}{state}")
    elif args.key_command == "revoke":
        info = store.revoke_key(args.access_key)
        print(f"revoked {info.access_key} ({info.user})")
