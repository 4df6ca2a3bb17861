"""Where anchorage's contract deliberately differs from the spec, in one place.

The spec (`ipfs-pinning-service.yaml`) is frozen and loose in some places, strict in others; the
server documents its own rules (docs/configuration.md's limits, Sources/Pins/TextRules.swift):

- stricter: `name` is at most 255 UTF-8 bytes (the spec's maxLength counts characters); names
  and `meta` keys hold no control character (Unicode Cc), `meta` values no U+0000; `meta` is at
  most 1000 keys and 16 KiB; bodies are at most 64 KiB, query strings 16 KiB;
- more lenient: `status` and `cid` filters may repeat items and list up to 100 CIDs (Kubo does
  not keep to the spec's 10); `origins` may repeat, run past 20 and hold anything (what is not
  a plausible multiaddr is dropped, never refused: Kubo sends every address it has); `null` for
  `name`, `meta` or `origins` means absent.

`refusal` and `lenient_reading` say whether one request falls under these rules; the hooks use
them to excuse exactly the schemathesis failures they explain, and the storage properties use
`refusal` as their oracle for which pins must be accepted.
"""

import copy
import json
import unicodedata
from urllib.parse import parse_qsl, urlsplit

import jsonschema_rs
import yaml

MAX_NAME_BYTES = 255
MAX_META_KEYS = 1000
MAX_META_BYTES = 16384
MAX_BODY_BYTES = 65536
MAX_QUERY_BYTES = 16384
MAX_CIDS_PER_QUERY = 100


def utf8_len(text):
    return len(text.encode())


def control_character(text):
    """The first Unicode Cc character (U+0000-U+001F, U+007F-U+009F) in text, or None."""
    return next((c for c in text if unicodedata.category(c) == "Cc"), None)


def _name_refusal(name):
    if not isinstance(name, str):
        return None
    if utf8_len(name) > MAX_NAME_BYTES:
        return "name longer than 255 UTF-8 bytes (limits.maxNameBytes; the spec counts characters)"
    if control_character(name):
        return "control character in name (TextRules)"
    return None


def _meta_refusal(meta):
    if not isinstance(meta, dict):
        return None
    if any(isinstance(k, str) and control_character(k) for k in meta):
        return "control character in a meta key (TextRules)"
    if any(isinstance(v, str) and "\x00" in v for v in meta.values()):
        return "U+0000 in a meta value (PostgreSQL cannot store it)"
    if len(meta) > MAX_META_KEYS:
        return "more than 1000 meta keys (limits.maxMetaKeys)"
    if sum(utf8_len(k) + utf8_len(v) for k, v in meta.items() if isinstance(v, str)) > MAX_META_BYTES:
        return "meta over 16 KiB (limits.maxMetaBytes)"
    return None


def refusal(pin=None, query=None, body_bytes=0, query_bytes=0):
    """Why the server refuses this request although the spec admits it, or None.

    pin: a Pin body (POST /pins, POST /pins/{requestid}); query: GET /pins parameters as the
    server reads them (see `read_query`)."""
    if body_bytes > MAX_BODY_BYTES:
        return "body over 64 KiB (limits.maxBodyBytes)"
    if query_bytes > MAX_QUERY_BYTES:
        return "query string over 16 KiB (limits.maxQueryBytes)"
    for fields in (pin, query):
        if isinstance(fields, dict):
            why = _name_refusal(fields.get("name")) or _meta_refusal(fields.get("meta"))
            if why:
                return why
    return None


def read_query(url):
    """GET /pins parameters as the server reads them: lists split on commas, meta parsed."""
    params = {}
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key in ("cid", "status"):
            params[key] = value.split(",")
        elif key == "meta":
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        elif key == "limit":
            params[key] = int(value) if value.lstrip("+").isdigit() else value
        else:
            params[key] = value
    return params


class Relaxed:
    """The spec's request schemas with the server's deliberate leniencies applied."""

    def __init__(self, spec_path):
        with open(spec_path, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        components = copy.deepcopy(spec["components"])
        pin = components["schemas"]["Pin"]["properties"]
        components["schemas"]["Origins"] = {"type": "array", "items": {"type": "string"}}
        for field in ("name", "meta", "origins"):
            pin[field] = {"anyOf": [pin[field], {"type": "null"}]}
        params = components["parameters"]
        query = {name: p["schema"] for name, p in params.items() if "schema" in p}
        query["meta"] = {"$ref": "#/components/schemas/PinMeta"}
        query["cid"] = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_CIDS_PER_QUERY}
        query["status"] = {"type": "array", "items": {"$ref": "#/components/schemas/Status"}, "minItems": 1}

        def validator(schema):
            return jsonschema_rs.Draft4Validator({**schema, "components": components}, validate_formats=True)

        self.pin = validator({"$ref": "#/components/schemas/Pin"})
        self.query = validator({"type": "object", "properties": query})

    def lenient_reading(self, pin=None, query=None):
        """Whether the server's relaxed contract admits this request (which the spec does not)."""
        if pin is not None:
            return self.pin.is_valid(pin)
        return self.query.is_valid(query)
