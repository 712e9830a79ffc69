"""Helpers for the tests: real servers, real databases, real clients."""
