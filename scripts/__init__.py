"""Developer and CI scripts (runtime lock derivation)."""
