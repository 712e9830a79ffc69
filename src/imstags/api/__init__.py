"""The HTTP layer, one package per API family of the reference:

- ``ims/``: the IMS extension APIs (``/v1/cloudimages...``, ``/v2/cloudimages...``,
  ``/v2/{project_id}/images/...``), with ``ims/tags.py`` for the image-tagging chapter;
- ``openstack/``: the native OpenStack image API (``/``, ``/v2/images...``, ``/v2/schemas...``);
- ``identity/``: the Keystone v3 subset (``/v3...``).

Handlers are thin: parse, call one service function, serialise. ``routes.py`` is the one
place where the routers are wired into the app.
"""
