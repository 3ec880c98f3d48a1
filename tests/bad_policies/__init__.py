"""Bad policies: a good base.toml and the table of edits that must each be refused (cases.py)."""
