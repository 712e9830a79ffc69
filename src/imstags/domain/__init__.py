"""The service layer: every rule of the API (limits, idempotence, the aggregate, identity)
lives here and knows nothing of HTTP. Functions take a SQLAlchemy session and plain values."""
