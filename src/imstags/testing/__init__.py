"""imstags for your tests: a real server in a few lines, in a known state, failing on purpose.

- :func:`server` starts ``imstags serve`` on a free loopback port (a temporary SQLite database
  unless you give a URL) with the admin API turned on, and stops it when the block ends.
- :class:`Emulator` seeds, exports and resets state, makes fresh projects with their AK/SK and
  Keystone user, and sets fault rules.
- The pytest plugin (:mod:`imstags.testing.plugin`, registered by ``pip install imstags``)
  gives tests the same as fixtures.

Nothing here imports the client libraries until a test asks for a client.
"""

from imstags.testing.emulator import Emulator, FaultRules, TestProject, server

__all__ = ["Emulator", "FaultRules", "TestProject", "server"]
