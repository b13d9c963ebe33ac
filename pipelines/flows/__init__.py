"""One module per command: each reads load -> validate -> features -> fit -> evaluate -> log."""
