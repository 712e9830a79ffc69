"""Storage: one SQLAlchemy schema and engine setup that serve SQLite and PostgreSQL alike."""
