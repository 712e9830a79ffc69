"""Image tags: their rules, the one write path, the per-API operations and the queries.

- :mod:`.rules`: what a key/value pair must be to be written or named for deletion;
- :mod:`.native`: native OpenStack ``"k=v"`` strings and the ``/v1`` dotted form;
- :mod:`.write_path`: the only code that changes an image's tags, keeping the aggregate exact;
- :mod:`.operations`: each tagging API's operation, as one transaction on the write path;
- :mod:`.summary`: the aggregate read for the core endpoint, and its recount;
- :mod:`.query_by_tag`: ``POST /v2/{project_id}/images/resource_instances/action``;
- :mod:`.v1_listing`: ``GET /v1/cloudimages/tags``.
"""
