"""Why clients buy: the motivation taxonomy, the rule and LLM extractors, and batch extraction with a cache."""
