"""otpatch engine: load -> validate -> compile -> conduct, the journal and the CLI."""
