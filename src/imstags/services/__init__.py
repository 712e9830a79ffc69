"""The service layer: one object per API family, owning its use cases.

A service method takes plain values, opens its own transaction, chooses the thread it runs on
(the writer threads of :mod:`.writes` or the shared pool) and owns the caches it needs. It knows
nothing of HTTP: handlers in :mod:`imstags.api` parse a request, call one method and render
the result. :mod:`.container` builds them all from one settings object.
"""
