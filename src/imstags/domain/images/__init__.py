"""The image catalog that tags rest on.

- :mod:`.records`: an image's ids, creation, lookup and deletion;
- :mod:`.attributes`: which attributes exist and the rules of their values;
- :mod:`.patch`: JSON-patch updates (native PATCH and the IMS update);
- :mod:`.listing`: the native and IMS image listings (filters, sorting, paging).
"""
