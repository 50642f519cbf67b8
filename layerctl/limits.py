"""Input size limits, in a module light enough for the CLI to import at start-up."""

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP; --max-pixels raises it
