"""IMS extension APIs (the reference's "IMS APIs" chapter)."""
