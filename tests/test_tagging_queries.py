"""POST /v2/{project_id}/images/resource_instances/action through the official SDK.

Page: querying_images_by_tag. Every test makes its images in a fresh project, so counts are
exact.
"""

from __future__ import annotations

import pytest
from huaweicloudsdkims.v2 import (
    ImsClient,
    ListImageByTagsRequest,
    ListImageByTagsRequestBody,
    TagKeyValue,
    Tags,
)

from tests.conftest import new_project_id
from tests.support.clients import ims_client
from tests.support.tagging import create_image, refused


@pytest.fixture
def catalog(ims) -> dict[str, str]:
    """Five images: name -> id."""
    specs = {
        "web-prod": ["env=prod", "tier=web", "team=a"],
        "db-prod": ["env=prod", "tier=db"],
        "web-dev": ["env=dev", "tier=web", "backup"],
        "scratch": ["team=b"],
        "bare": [],
    }
    return {name: create_image(ims, *tags, name=name) for name, tags in specs.items()}


def tag_list(spec: dict[str, list[str]] | None) -> list[Tags] | None:
    if spec is None:
        return None
    return [Tags(key=key, values=values) for key, values in spec.items()]


def query(ims: ImsClient, action: str = "filter", **fields):
    for name in ("tags", "tags_any", "not_tags", "not_tags_any"):
        if name in fields:
            fields[name] = tag_list(fields[name])
    if "matches" in fields:
        fields["matches"] = [TagKeyValue(key=k, value=v) for k, v in fields["matches"]]
    body = ListImageByTagsRequestBody(action=action, **fields)
    return ims.list_image_by_tags(ListImageByTagsRequest(body=body))


def names(ims: ImsClient, catalog: dict[str, str], **fields) -> set[str]:
    by_id = {image_id: name for name, image_id in catalog.items()}
    response = query(ims, limit="1000", **fields)
    assert response.total_count == len(response.resources)
    return {by_id[r.resource_id] for r in response.resources}


# --- semantics -----------------------------------------------------------------------------


def test_list_image_by_tags_tags_requires_every_tag(ims, catalog):
    assert names(ims, catalog, tags={"env": ["prod"], "tier": ["web"]}) == {"web-prod"}


def test_list_image_by_tags_values_are_alternatives(ims, catalog):
    assert names(ims, catalog, tags={"env": ["prod", "dev"]}) == {"web-prod", "db-prod", "web-dev"}


def test_list_image_by_tags_empty_values_match_any_value(ims, catalog):
    assert names(ims, catalog, tags={"team": []}) == {"web-prod", "scratch"}


def test_list_image_by_tags_key_only_tag_has_empty_value(ims, catalog):
    assert names(ims, catalog, tags={"backup": [""]}) == {"web-dev"}


def test_list_image_by_tags_tags_any_requires_one(ims, catalog):
    found = names(ims, catalog, tags_any={"tier": ["db"], "team": ["b"]})
    assert found == {"db-prod", "scratch"}


def test_list_image_by_tags_not_tags_excludes_images_with_all(ims, catalog):
    found = names(ims, catalog, not_tags={"env": ["prod"], "tier": ["web"]})
    assert found == {"db-prod", "web-dev", "scratch", "bare"}


def test_list_image_by_tags_not_tags_any_excludes_images_with_any(ims, catalog):
    found = names(ims, catalog, not_tags_any={"env": ["prod"], "team": []})
    assert found == {"web-dev", "bare"}


def test_list_image_by_tags_conditions_combine(ims, catalog):
    found = names(
        ims,
        catalog,
        tags={"tier": []},
        tags_any={"env": ["prod", "dev"]},
        not_tags_any={"backup": []},
        not_tags={"tier": ["db"]},
    )
    assert found == {"web-prod"}


def test_list_image_by_tags_without_any_tag_ignores_tag_lists(ims, catalog):
    assert names(ims, catalog, without_any_tag=True, tags={"env": ["prod"]}) == {"bare"}


def test_list_image_by_tags_no_condition_lists_all_images_of_project(ims, catalog):
    assert names(ims, catalog) == set(catalog)


def test_list_image_by_tags_other_projects_images_are_not_seen(
    ims, catalog, server, make_credential
):
    other = ims_client(server.base_url, make_credential(new_project_id()))
    create_image(other, "env=prod")
    assert query(other, "count", tags={"env": ["prod"]}).total_count == 1
    assert query(ims, "count", tags={"env": ["prod"]}).total_count == 2


def test_list_image_by_tags_match_resource_name_is_substring(ims, catalog):
    assert names(ims, catalog, matches=[("resource_name", "web")]) == {"web-prod", "web-dev"}
    assert names(ims, catalog, matches=[("resource_name", "WEB")]) == set()


def test_list_image_by_tags_match_resource_name_wildcards_are_literal(ims, catalog):
    assert names(ims, catalog, matches=[("resource_name", "%")]) == set()
    assert names(ims, catalog, matches=[("resource_name", "_")]) == set()


def test_list_image_by_tags_match_resource_id_is_exact(ims, catalog):
    image = catalog["scratch"]
    assert names(ims, catalog, matches=[("resource_id", image)]) == {"scratch"}
    assert names(ims, catalog, matches=[("resource_id", image[:8])]) == set()


def test_list_image_by_tags_match_combines_with_tags(ims, catalog):
    found = names(ims, catalog, matches=[("resource_name", "prod")], tags={"tier": ["db"]})
    assert found == {"db-prod"}


# --- response shape ------------------------------------------------------------------------


def test_list_image_by_tags_filter_response_shape(ims, catalog):
    response = query(ims, tags={"tier": ["db"]})
    assert response.total_count == 1
    (resource,) = response.resources
    assert resource.resource_id == catalog["db-prod"]
    assert resource.resource_name == "db-prod"
    assert resource.resource_detail.status == "queued"
    assert [(t.key, t.value) for t in resource.tags] == [("env", "prod"), ("tier", "db")]


def test_list_image_by_tags_count_returns_only_total(ims, catalog):
    response = query(ims, "count", tags={"env": []})
    assert response.total_count == 3
    assert response.resources is None


def test_list_image_by_tags_limit_and_offset_page_through(ims, catalog):
    seen = []
    for offset in range(0, 6, 2):
        page = query(ims, limit="2", offset=str(offset))
        assert page.total_count == 5
        seen += [r.resource_id for r in page.resources]
    assert sorted(seen) == sorted(catalog.values())
    assert len(seen) == 5
    assert query(ims, limit="2", offset="5").resources == []


def test_list_image_by_tags_default_limit_is_10(ims):
    for _ in range(11):
        create_image(ims)
    page = query(ims)
    assert (page.total_count, len(page.resources)) == (11, 10)


def test_list_image_by_tags_count_ignores_limit_and_offset(ims, catalog):
    assert query(ims, "count", limit="0", offset="-1").total_count == 5


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["Filter", "COUNT", "list", ""])
def test_list_image_by_tags_action_is_case_sensitive(ims, action):
    refused(lambda: query(ims, action), 400, "IMG.0001")


@pytest.mark.parametrize("field", ["tags", "tags_any", "not_tags", "not_tags_any"])
def test_list_image_by_tags_ten_keys_accepted_eleven_refused(ims, field):
    ten = {f"k{i}": [] for i in range(10)}
    query(ims, "count", **{field: ten})
    eleven = {**ten, "k10": []}
    refused(lambda: query(ims, "count", **{field: eleven}), 400, "IMG.0115")


@pytest.mark.parametrize("field", ["tags", "tags_any", "not_tags", "not_tags_any"])
def test_list_image_by_tags_ten_values_accepted_eleven_refused(ims, field):
    query(ims, "count", **{field: {"k": [f"v{i}" for i in range(10)]}})
    eleven = {"k": [f"v{i}" for i in range(11)]}
    refused(lambda: query(ims, "count", **{field: eleven}), 400, "IMG.0115")


def test_list_image_by_tags_key_255_accepted_256_refused(ims):
    """255, not the reference's 128: a native tag's key can be that long (issue 11 item 12)."""
    query(ims, "count", tags={"k" * 255: []})
    refused(lambda: query(ims, "count", tags={"k" * 256: []}), 400, "IMG.0115")


def test_list_image_by_tags_value_255_accepted_256_refused(ims):
    query(ims, "count", tags_any={"k": ["v" * 255]})
    refused(lambda: query(ims, "count", tags_any={"k": ["v" * 256]}), 400, "IMG.0115")


def test_list_image_by_tags_characters_are_not_checked(ims):
    assert query(ims, "count", tags={"a b=c.d!": ["x y*?%"]}).total_count == 0


def test_list_image_by_tags_duplicate_keys_are_refused(ims):
    body = ListImageByTagsRequestBody(
        action="count", not_tags=[Tags(key="k", values=["a"]), Tags(key="k", values=["b"])]
    )
    refused(lambda: ims.list_image_by_tags(ListImageByTagsRequest(body=body)), 400, "IMG.0115")


def test_list_image_by_tags_duplicate_values_are_refused(ims):
    refused(lambda: query(ims, "count", tags={"k": ["a", "a"]}), 400, "IMG.0115")


@pytest.mark.parametrize("key", ["", "  "])
def test_list_image_by_tags_blank_key_is_refused(ims, key):
    refused(lambda: query(ims, "count", tags_any={key: []}), 400, "IMG.0115")


@pytest.mark.parametrize("field", ["tags", "tags_any", "not_tags", "not_tags_any", "matches"])
def test_list_image_by_tags_empty_list_is_refused(ims, field):
    body = ListImageByTagsRequestBody(action="count", **{field: []})
    code = "IMG.0001" if field == "matches" else "IMG.0115"
    refused(lambda: ims.list_image_by_tags(ListImageByTagsRequest(body=body)), 400, code)


@pytest.mark.parametrize(
    ("limit", "accepted"), [("1", True), ("1000", True), ("0", False), ("1001", False)]
)
def test_list_image_by_tags_limit_1_to_1000(ims, limit, accepted):
    if accepted:
        query(ims, limit=limit)
    else:
        refused(lambda: query(ims, limit=limit), 400, "IMG.0001")


@pytest.mark.parametrize(("offset", "accepted"), [("0", True), ("-1", False), ("x", False)])
def test_list_image_by_tags_offset_not_negative(ims, offset, accepted):
    if accepted:
        query(ims, offset=offset)
    else:
        refused(lambda: query(ims, offset=offset), 400, "IMG.0001")


@pytest.mark.parametrize("limit", ["ten", "1.5", "", "1_0", "99999999999999999999"])
def test_list_image_by_tags_limit_must_be_integer(ims, limit):
    refused(lambda: query(ims, limit=limit), 400, "IMG.0001")


def test_list_image_by_tags_huge_offset_is_an_empty_page(ims, catalog):
    page = query(ims, offset="999999999999999999")
    assert (page.total_count, page.resources) == (5, [])


def test_list_image_by_tags_match_unknown_key_is_refused(ims):
    refused(lambda: query(ims, matches=[("resource_type", "x")]), 400, "IMG.0001")


def test_list_image_by_tags_match_duplicate_key_is_refused(ims):
    matches = [("resource_name", "a"), ("resource_name", "b")]
    refused(lambda: query(ims, matches=matches), 400, "IMG.0001")


def test_list_image_by_tags_match_value_255_accepted_256_refused(ims):
    query(ims, matches=[("resource_name", "n" * 255)])
    refused(lambda: query(ims, matches=[("resource_name", "n" * 256)]), 400, "IMG.0001")


def test_list_image_by_tags_path_of_other_project_is_403(server, credential):
    wrong = ims_client(server.base_url, credential, project_id=new_project_id())
    refused(lambda: query(wrong, "count"), 403, "IMG.0026")


@pytest.mark.parametrize(
    ("key", "values", "sort_matches_limit", "matches"),
    [
        ("env", ["prod"], 10_000, 20),  # one value: a range of the by-tag index
        ("n", ["3", "1"], 10_000, 15),  # several values: ranges merged
        ("n", [], 0, 30),  # any value, many matches: images walked in order
        ("n", [], 10_000, 30),  # any value, few matches: matches sorted
    ],
)
def test_resource_instances_single_tag_plans_agree_with_general_query(
    db, project_id, monkeypatch, key, values, sort_matches_limit, matches
):
    """A single-tag query is planned from the aggregate and paged from the by-tag index (or
    by sorting the matches, or walking the images in order); every plan gives, page by page,
    what the general query gives: newest first, each match once."""
    from imstags.domain.images.records import create_image_tx
    from imstags.domain.tags import query_by_tag

    def create(tags: list[str]) -> None:
        db.write(lambda s: create_image_tx(s, project_id, {"name": "q"}, tags, {}))

    for i in range(30):
        create(["env=prod" if i % 3 else "env=dev", f"n={i % 4}"])
    body = {"action": "filter", "tags": [{"key": key, "values": values}], "limit": "7"}
    monkeypatch.setattr(query_by_tag, "SORT_MATCHES_LIMIT", sort_matches_limit)
    pages = []
    for offset in range(0, 35, 7):
        query = query_by_tag.parse_tag_match_query({**body, "offset": str(offset)})
        with db.read() as session:
            planned = query_by_tag.run_tag_match_query(session, project_id, query)
        monkeypatch.setattr(query_by_tag, "_single_tag", lambda q: None)
        with db.read() as session:
            general = query_by_tag.run_tag_match_query(session, project_id, query)
        monkeypatch.undo()
        monkeypatch.setattr(query_by_tag, "SORT_MATCHES_LIMIT", sort_matches_limit)
        assert planned == general
        pages.append(planned)
    assert pages[0].total_count == matches
    found = [r.image_id for page in pages for r in page.resources]
    assert len(found) == matches == len(set(found))
