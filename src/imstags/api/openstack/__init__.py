"""Native OpenStack image APIs (the reference's "Native OpenStack APIs" chapter)."""
