"""The database layer: connections, the embedded default, migrations and seed data."""
