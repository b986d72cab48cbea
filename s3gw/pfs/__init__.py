"""The versioned file system: repos, branches, commits, file trees, multipart staging,
and the auth store, over an embedded SQLite metadata store."""
