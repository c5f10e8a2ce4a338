"""Generated Hubble stubs; see kcockpit.wire.protogen."""
