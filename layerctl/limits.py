"""Size limits, in a module light enough for the CLI to import at start-up.

``--max-pixels`` has no fixed default: an input may have as many pixels as the memory
plan allows (layerctl.budget: the memory allowance divided by the backend's peak bytes
per pixel), so the default follows from the machine, the container, ``ulimit -v`` and
``--max-memory``. An explicit ``--max-pixels`` caps it further.
"""

# The largest canvas a result reader accepts whatever the memory (formats/canvas.py):
# 100 MP, a 10000x10000 poster; results are also read within the memory plan.
MAX_RESULT_PIXELS = 100_000_000
# Photoshop's limit on layers in one document (Adobe, "Photoshop file size and
# dimension limits"): readers refuse more before decoding any.
MAX_LAYERS = 8000
