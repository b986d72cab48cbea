"""s3gw: a versioned data store (repos, branches, commits) with an S3 front door."""

__version__ = "0.1.0"
