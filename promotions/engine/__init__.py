"""The promotion engine's pure core (docs/engine.md): a cart, compiled rules and a context in, the applied
promotions out. No Django, no database, no clock, no settings inside; import-linter keeps it so."""
