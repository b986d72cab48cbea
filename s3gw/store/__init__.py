"""The content-addressed chunk store: chunk identity and manifests, chunking and
hashing (native or pure twin), chunk files and packs on local disk."""
