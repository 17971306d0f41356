"""Label quality in the product: the worker's per-version evidence, the lead's review queue, influence views."""
