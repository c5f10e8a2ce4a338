import os

# Deterministic UI: no animations, no cursor blink, fixed colours regardless of the terminal.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

# Exports and saved fixes of tests that do not name a directory never land in the real home.
import tempfile  # noqa: E402

os.environ.setdefault("KCOCKPIT_EXPORT_DIR", os.path.join(tempfile.mkdtemp(prefix="kcockpit-test-exports-"), "exports"))
