"""The write pipeline: body pieces -> chunker -> hashers/verifiers -> chunk store
(``pipeline``), and small PUTs staged and committed in batches (``smallputs``)."""
