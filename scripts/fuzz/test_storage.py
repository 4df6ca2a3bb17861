"""Storage and tenancy properties of a live anchorage node (run by scripts/fuzz.sh).

schemathesis checks the wire contract; these check what it cannot see. Every pin carries a valid
CID, so every request reaches PostgreSQL with hostile text in it, and the answers are judged
against oracles, not only against the schema:

- what is stored comes back unchanged (name, meta, origins) from POST, GET and the list;
- a name filter finds the pin under every match strategy, and exact/partial filters return only
  names that really match (LIKE metacharacters are data, not patterns);
- list filters, limits, ordering and pagination hold for any combination of query parameters;
- a request the server's documented rules admit (contract.py) is never refused, any other is a 400
  with a Failure body, and nothing is a 5xx;
- another org never sees, replaces or deletes these pins;
- concurrent creates in one org all succeed, with distinct `created` (pagination needs it).

Environment: ANCHORAGE_FUZZ_URL, ANCHORAGE_FUZZ_TOKEN, ANCHORAGE_FUZZ_PEER_TOKEN (another org),
ANCHORAGE_FUZZ_SPEC (the OpenAPI document), FUZZ_STORAGE_EXAMPLES (examples per property).
"""

import json
import os
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import jsonschema_rs
import pytest
import requests
import yaml
from hypothesis import HealthCheck, assume, currently_in_test_context, example, given, note, settings
from hypothesis import strategies as st

from cids import KNOWN, canonical, raw_cidv1, valid_cids
from contract import MAX_QUERY_BYTES, refusal, utf8_len

URL = os.environ["ANCHORAGE_FUZZ_URL"]
TOKEN = os.environ["ANCHORAGE_FUZZ_TOKEN"]
PEER_TOKEN = os.environ["ANCHORAGE_FUZZ_PEER_TOKEN"]

MAX_ORIGIN_BYTES = 1024
MAX_ECHOED_ORIGINS = 20
ALL_STATUSES = ["queued", "pinning", "pinned", "failed"]
MATCHES = ["exact", "iexact", "partial", "ipartial"]

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_STORAGE_EXAMPLES", "150")),
    deadline=None,  # a request is slow now and then on 2 cores; that is not what is tested here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("fuzz")

with open(os.environ["ANCHORAGE_FUZZ_SPEC"], encoding="utf-8") as spec_file:
    COMPONENTS = yaml.safe_load(spec_file)["components"]


def validator(name):
    # OpenAPI 3.0 schemas are JSON Schema draft 4 plus annotations the validator ignores.
    return jsonschema_rs.Draft4Validator(
        {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}, validate_formats=True
    )


SCHEMAS = {name: validator(name) for name in ("PinStatus", "PinResults", "Failure")}


class Org:
    """One org's client; every answer is checked for a 5xx and against the spec's schema."""

    def __init__(self, token):
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, expect, **kwargs):
        for _ in range(10):
            response = self.session.request(method, URL + path, timeout=60, **kwargs)
            if response.status_code != 429:
                break
            # The rate limit is the limiter's business, not these properties': wait as told.
            time.sleep(float(response.headers.get("Retry-After", "1")))
        request = response.request
        where = (
            f"{method} {request.url}\n  body: {request.body!r}\n"
            f"  -> {response.status_code} {response.text[:2000]}"
        )
        assert response.status_code < 500, f"server error\n{where}"
        assert response.status_code in expect, f"expected {sorted(expect)}\n{where}"
        if currently_in_test_context():
            note(where)  # the requests before a failing one, in the failure report
        if response.status_code == 202 and method == "DELETE":
            return response, None
        body = response.json()
        schema = {200: "PinResults" if path == "/pins" else "PinStatus", 202: "PinStatus"}.get(
            response.status_code, "Failure"
        )
        errors = [e.message for e in SCHEMAS[schema].iter_errors(body)]
        assert not errors, f"{schema} violated: {errors}\n{where}"
        return response, body

    def create(self, pin, expect=frozenset({202})):
        return self.call("POST", "/pins", expect, json=pin)

    def get(self, requestid, expect=frozenset({200})):
        return self.call("GET", f"/pins/{requestid}", expect)

    def list(self, params, expect=frozenset({200})):
        return self.call("GET", "/pins", expect, params=params)


ME = Org(TOKEN)
PEER = Org(PEER_TOKEN)


# --- hostile values ------------------------------------------------------------------------------

FRAGMENTS = [
    "%", "_", "\\", "'", '"', "''", "\\%", "\\_", "%%", ";", "--", "/*", "*/", "$1", "?", ":",
    "[", "]", "^", "*", "(", ")", "{", "}", ",", "&", "=", "+", "#",
    "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u200b", "\ufeff", "\u202e",
    "e\u0301", "\u0130", "\u0131", "\u00df", "\ufb00", "\u01c5", "\u03a3\u03c3\u03c2",
    "\U0001f9f7", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\ue000", "\U0010ffff",
    "a", "A", "z", "0", " ",
]  # fmt: skip

# Any code point but U+0000 (control characters included): NUL gets properties of its own below.
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
# Text mixing the fragments above with arbitrary code points, and long runs around the limits.
hostile_text = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS) | any_text.filter(bool).map(lambda t: t[:6]), max_size=12).map("".join),
    any_text,
    st.builds(lambda unit, n: unit * n, st.sampled_from(["a", "%", "\u20ac", "\U0001f9f7"]), st.integers(60, 300)),
)
# U+0000 somewhere in hostile text: valid JSON, and PostgreSQL text cannot hold it (it used to be a
# 500). Kept out of every other property, so that this one hazard cannot hide the others.
with_nul = st.tuples(hostile_text, hostile_text).map(lambda parts: parts[0] + "\x00" + parts[1])

meta_maps = st.one_of(
    st.dictionaries(hostile_text, hostile_text, max_size=8),
    # Many keys, around the 1000-key limit, and long values, around the 16 KiB limit.
    st.integers(990, 1010).map(lambda n: {f"k{i}": "v" for i in range(n)}),
    st.integers(3, 6).map(lambda n: {f"long{i}": "x" * 4000 for i in range(n)}),
)


@st.composite
def multiaddrs(draw):
    ip = draw(
        st.sampled_from(["/ip4/127.0.0.1", "/ip4/10.0.0.1", "/ip4/192.168.1.1", "/ip4/169.254.169.254", "/ip6/::1"])
        | st.ip_addresses(v=4).map(lambda a: f"/ip4/{a}")
        | st.ip_addresses(v=6).map(lambda a: f"/ip6/{a}")
        | st.just("/dns4/localhost")
    )
    transport = draw(st.sampled_from(["/tcp/4001", "/udp/4001/quic-v1", "/tcp/0", "/tcp/65535", ""]))
    peer = draw(st.sampled_from(["/p2p/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "/p2p/12D3KooWfake", ""]))
    return ip + transport + peer


origin_lists = st.lists(
    st.one_of(multiaddrs(), hostile_text, st.integers(1000, 1100).map(lambda n: "/ip4/1.2.3.4/tcp/1/" + "x" * n)),
    max_size=25,
)


def expected_statuses(pin):
    """POST answers 400 when the server's documented rules refuse the pin (contract.py), else 202."""
    return {400} if refusal(pin=pin, body_bytes=len(json.dumps(pin).encode())) else {202}


def stored_pin(pin):
    """The Pin the server should echo: an empty name is no name."""
    echoed = {k: v for k, v in pin.items() if k != "origins"}
    if echoed.get("name") == "":
        del echoed["name"]
    if echoed.get("meta") == {}:
        del echoed["meta"]
    return echoed


def assert_round_trip(sent, status):
    """The created pin reads back as sent (origins: a bounded subset of what was sent)."""
    expected = stored_pin(sent)
    echoed = {k: v for k, v in status["pin"].items() if k != "origins"}
    assert echoed == expected, f"POST echo differs: {echoed!r} != {expected!r}"
    origins = status["pin"].get("origins", [])
    assert set(origins) <= set(sent.get("origins", [])), f"origins not sent: {origins!r}"
    assert len(origins) <= MAX_ECHOED_ORIGINS
    _, fetched = ME.get(status["requestid"])
    assert fetched["pin"] == status["pin"], f"GET differs from POST: {fetched['pin']!r} != {status['pin']!r}"
    assert fetched["created"] == status["created"]


def all_statuses(**params):
    return {"status": ",".join(ALL_STATUSES), **params}


def requestids(listing):
    return [result["requestid"] for result in listing["results"]]


# --- properties ----------------------------------------------------------------------------------


@given(cid=valid_cids, name=hostile_text, data=st.data())
def test_name_is_stored_and_found(cid, name, data):
    pin = {"cid": cid, "name": name}
    response, status = ME.create(pin, expect=expected_statuses(pin))
    if response.status_code == 400:
        return
    assert_round_trip(pin, status)
    assume(name)
    # The name finds its own pin under every strategy; exact finds nothing else.
    for match in MATCHES:
        _, listing = ME.list(all_statuses(name=name, match=match, cid=cid, limit=1000))
        assert status["requestid"] in requestids(listing), f"match={match} misses its own pin"
        if match == "exact":
            assert all(r["pin"].get("name") == name for r in listing["results"]), "exact over-matches"
    # Any piece of it finds it with a partial match, and only names that contain that piece.
    start = data.draw(st.integers(0, len(name) - 1))
    part = name[start : data.draw(st.integers(start + 1, len(name)))]
    _, listing = ME.list(all_statuses(name=part, match="partial", limit=1000))
    assert all(part in r["pin"].get("name", "") for r in listing["results"]), f"partial {part!r} over-matches"
    if listing["count"] <= 1000:
        assert status["requestid"] in requestids(listing), f"partial {part!r} misses {name!r}"


@given(cid=valid_cids, meta=meta_maps, picks=st.lists(st.integers(0, 2000), max_size=4), ascii_only=st.booleans())
# A leading U+FEFF once vanished on the way back from PostgreSQL, merging these two keys.
@example(cid=KNOWN[0], meta={"\ufeffk": "\ufeffa", "k": "b"}, picks=[0], ascii_only=False)
def test_meta_is_stored_and_found(cid, meta, picks, ascii_only):
    pin = {"cid": cid, "meta": meta}
    response, status = ME.create(pin, expect=expected_statuses(pin))
    if response.status_code == 400:
        return
    assert_round_trip(pin, status)
    # Any part of the pin's meta finds it, and every result carries that part.
    keys = sorted(meta)
    wanted = {keys[i % len(keys)]: meta[keys[i % len(keys)]] for i in picks} if keys else {}
    params = all_statuses(meta=json.dumps(wanted, ensure_ascii=ascii_only), cid=cid, limit=1000)
    _, listing = ME.list(params, expect=query_statuses(params))
    if "error" in listing:
        return
    assert status["requestid"] in requestids(listing), f"meta filter {wanted!r} misses its own pin"
    for result in listing["results"]:
        have = result["pin"].get("meta", {})
        assert all(have.get(k) == v for k, v in wanted.items()), f"meta filter {wanted!r} over-matches: {have!r}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(cid=valid_cids, meta=st.dictionaries(hostile_text, json_values, min_size=1, max_size=4))
def test_meta_values_must_be_strings(cid, meta):
    ME.create({"cid": cid, "meta": meta}, expect={400})


@given(cid=valid_cids, origins=origin_lists)
def test_origins_are_bounded_and_echoed(cid, origins):
    # Extra, repeated, long and unparsable origins are dropped, never refused (Kubo sends many).
    pin = {"cid": cid, "origins": origins}
    response, status = ME.create(pin, expect=expected_statuses(pin))
    if response.status_code == 400:
        return
    assert_round_trip(pin, status)
    echoed = status["pin"].get("origins", [])
    assert len(set(echoed)) == len(echoed), f"duplicate origins echoed: {echoed!r}"
    assert all(utf8_len(o) <= MAX_ORIGIN_BYTES for o in echoed)


@given(cid=valid_cids, field=st.sampled_from(["name", "meta key", "meta value", "origin"]), text=with_nul)
def test_nul_is_refused_or_dropped(cid, field, text):
    """U+0000 in a stored field: a 400 in a name or meta, dropped from origins; never a 500."""
    pin = {"cid": cid}
    if field == "name":
        pin["name"] = text
    elif field == "meta key":
        pin["meta"] = {text: "v"}
    elif field == "meta value":
        pin["meta"] = {"k": text}
    else:
        pin["origins"] = [text]
    response, status = ME.create(pin, expect=expected_statuses(pin))
    if response.status_code == 202:
        assert_round_trip(pin, status)


@given(field=st.sampled_from(["name", "meta key", "meta value"]), text=with_nul, match=st.sampled_from(MATCHES))
def test_nul_in_filters(field, text, match):
    params = all_statuses(match=match)
    if field == "name":
        params["name"] = text
    else:
        params["meta"] = json.dumps({text: "v"} if field == "meta key" else {"k": text})
    ME.list(params, expect={200, 400})


@given(
    cid=st.one_of(
        st.text(max_size=80),
        valid_cids.flatmap(lambda c: st.integers(0, len(c) - 1).map(lambda i: c[:i] + c[i + 1 :])),
        valid_cids.flatmap(lambda c: st.sampled_from([c.upper(), c.lower(), c + "=", " " + c, c + "\x00", c * 12])),
    )
)
def test_cid_strings_are_checked(cid):
    # Whatever the string, a CID the server takes is stored exactly as sent.
    response, body = ME.create({"cid": cid}, expect={202, 400})
    if response.status_code == 202:
        assert body["pin"]["cid"] == cid
        assert canonical(cid) is not None, f"accepted a string that does not decode: {cid!r}"
    else:
        assert body["error"]["reason"] == "INVALID_CID", body


moments = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))


@st.composite
def list_queries(draw):
    """GET /pins query parameters, each absent, valid or not; returns (params, all_valid)."""
    params, valid = {}, True

    def maybe(name, good, bad):
        nonlocal valid
        choice = draw(st.sampled_from(["absent", "good", "good", "bad"]))
        if choice != "absent":
            params[name] = draw(good if choice == "good" else bad)
            valid = valid and choice == "good"

    maybe(
        "name",
        hostile_text.filter(lambda name: name and not refusal(query={"name": name})),
        st.sampled_from(["a" * 256, "\u20ac" * 86, "tab\there", "\x00"]),
    )
    maybe("match", st.sampled_from(MATCHES), st.text(max_size=10).filter(lambda s: s not in MATCHES + [""]))
    maybe(
        "status",
        st.lists(st.sampled_from(ALL_STATUSES), min_size=1, unique=True).map(",".join),
        st.sampled_from(["", ",", "PINNED", "pinned,", "unknown", "queued,,pinned"]) | st.text(max_size=10),
    )
    maybe(
        "cid",
        st.lists(valid_cids, min_size=1, max_size=10, unique=True).map(",".join),
        st.sampled_from(["", ",", "Qm1,Qm2,bafy3", "QmCIDToBePinned"]) | st.text(max_size=20),
    )
    maybe("before", moments, st.text(max_size=30))
    maybe("after", moments, st.text(max_size=30))
    maybe("limit", st.integers(1, 1000).map(str), st.sampled_from(["0", "-1", "1001", "1e3", "ten", "", "9" * 20]))
    maybe(
        "meta",
        st.dictionaries(hostile_text, hostile_text, max_size=3).filter(lambda m: not refusal(query={"meta": m})).map(json.dumps),
        st.sampled_from(["", "[]", "null", '"x"', "{", '{"a":1}', '{"a":{"b":"c"}}', '{"a":null}']),
    )
    return params, valid and query_statuses(params) == {200}


def query_statuses(params):
    # The server refuses query strings over limits.maxQueryBytes, whatever is in them.
    return {200} if len(urllib.parse.urlencode(params)) <= MAX_QUERY_BYTES else {200, 400}


def moment(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


@given(query=list_queries())
def test_list_filters_hold(query):
    params, valid = query
    _, listing = ME.list(params, expect={200} if valid else {200, 400})
    if "error" in listing:
        return
    results = listing["results"]
    assert listing["count"] >= len(results)
    created = [moment(r["created"]) for r in results]
    assert created == sorted(created, reverse=True), "results are not newest first"
    assert len(set(created)) == len(created), "two pins of one org share `created`"
    if not valid:
        return  # a lenient server may read an invalid filter some way of its own
    assert len(results) <= int(params.get("limit", 10))
    for result, at in zip(results, created):
        pin = result["pin"]
        if "status" in params:
            assert result["status"] in params["status"].split(","), "status filter"
        if "cid" in params:
            assert canonical(pin["cid"]) in {canonical(c) for c in params["cid"].split(",")}, "cid filter"
        if "before" in params:
            assert at < moment(params["before"]), "before filter"
        if "after" in params:
            assert at > moment(params["after"]), "after filter"
        wanted = json.loads(params.get("meta") or "{}")
        assert all(pin.get("meta", {}).get(k) == v for k, v in wanted.items()), "meta filter"
        if params.get("name") and params.get("match", "exact") == "exact":
            assert pin.get("name") == params["name"], "exact name filter"
        if params.get("name") and params.get("match") == "partial":
            assert params["name"] in pin.get("name", ""), "partial name filter"


optional_fields = st.fixed_dictionaries(
    {}, optional={"name": hostile_text, "meta": st.dictionaries(hostile_text, hostile_text, max_size=3), "origins": origin_lists}
)


@given(cid=valid_cids, before=optional_fields, new_cid=valid_cids, after=optional_fields)
def test_replace_swaps_the_pin(cid, before, new_cid, after):
    original, replacement = {"cid": cid, **before}, {"cid": new_cid, **after}
    assume(expected_statuses(original) == expected_statuses(replacement) == {202})
    _, old = ME.create(original)
    _, new = ME.call("POST", f"/pins/{old['requestid']}", {202}, json=replacement)
    assert new["requestid"] != old["requestid"]
    assert_round_trip(replacement, new)
    # What was replaced is gone: reading, replacing or deleting it finds nothing.
    ME.get(old["requestid"], expect={404})
    ME.call("POST", f"/pins/{old['requestid']}", {404}, json=replacement)
    ME.call("DELETE", f"/pins/{old['requestid']}", {404})


@given(cid=valid_cids, name=hostile_text)
def test_other_orgs_see_nothing(cid, name):
    pin = {"cid": cid, "name": name, "meta": {"owner": "fuzz"}}
    assume(name and expected_statuses(pin) == {202})
    _, mine = ME.create(pin)
    rid = mine["requestid"]
    PEER.get(rid, expect={404})
    PEER.call("POST", f"/pins/{rid}", {404}, json={"cid": cid, "name": "taken"})
    PEER.call("DELETE", f"/pins/{rid}", {404})
    for params in (
        all_statuses(cid=cid),
        all_statuses(name=name, match="ipartial"),
        all_statuses(meta=json.dumps({"owner": "fuzz"})),
        {},
    ):
        _, listing = PEER.list(params)
        assert rid not in requestids(listing), f"org fuzz-peer lists fuzz's pin with {params}"
    # ...and the owner's pin is untouched.
    _, still = ME.get(rid)
    assert still["pin"] == mine["pin"]


def test_pagination_visits_every_pin_once():
    """Walking an org's pins with `before` = the oldest `created` of each page sees each pin once."""
    # The peer org: nothing else creates pins there while this runs.
    for i in range(30):
        PEER.create({"cid": raw_cidv1(os.urandom(32)), "name": f"page {i} %_\\"})
    _, first = PEER.list(all_statuses(limit=1000))
    seen, before = [], None
    while True:
        _, page = PEER.list(all_statuses(limit=7, **({"before": before} if before else {})))
        if not page["results"]:
            break
        seen += requestids(page)
        before = page["results"][-1]["created"]
    assert len(seen) == len(set(seen)), "a pin appears on two pages"
    assert len(seen) == first["count"], f"pagination saw {len(seen)} of {first['count']} pins"


def race(count, request):
    """Runs request(client, i) from `count` threads released at once; returns the responses."""
    barrier = threading.Barrier(count)

    def run(i):
        client = Org(TOKEN)  # a session per thread: requests.Session is not thread-safe
        barrier.wait()
        return request(client, i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_creates_in_one_org(round_):
    created = race(32, lambda client, i: client.create({"cid": raw_cidv1(os.urandom(32)), "name": f"race {round_}/{i}"})[1])
    assert len({c["requestid"] for c in created}) == 32
    assert len({c["created"] for c in created}) == 32, "two pins of one org share `created`"


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_replace_and_delete_have_one_winner(round_):
    _, pin = ME.create({"cid": raw_cidv1(os.urandom(32))})
    path = f"/pins/{pin['requestid']}"

    def replace_or_delete(client, i):
        if i % 2:
            return client.call("POST", path, {202, 404}, json={"cid": raw_cidv1(os.urandom(32))})[0].status_code
        return client.call("DELETE", path, {202, 404})[0].status_code

    statuses = race(16, replace_or_delete)
    assert statuses.count(202) == 1, f"{statuses.count(202)} of 16 racing replaces/deletes won"
