import os

# Deterministic UI: no animations, no cursor blink, fixed colours regardless of the terminal.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
