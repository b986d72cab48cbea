"""The command line: ``s3gw serve``, admin commands (repo/branch/commit/file, auth,
fsck, gc, stats)."""
