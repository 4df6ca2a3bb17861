"""schemathesis hooks for anchorage (loaded through SCHEMATHESIS_HOOKS=hooks).

The spec types every CID as a bare string and its examples are not CIDs, so a fuzzer that follows
it sends pins the server must reject (400 INVALID_CID) and never reaches the storage layer. These
hooks annotate the fuzzer's in-memory copy of the document (the file is untouched) so that CIDs
are drawn from `cids.valid_cids`: `format: cid` on `Pin.cid` and on the items of the `cid` query
parameter, and real CIDs as their examples. Negative cases still break the CID fields (wrong
types, missing `cid`), and test_storage.py sends malformed CID strings on purpose.
"""

import schemathesis

from cids import KNOWN, valid_cids

schemathesis.openapi.format("cid", valid_cids)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    components = raw_schema["components"]
    pin_cid = components["schemas"]["Pin"]["properties"]["cid"]
    pin_cid["format"] = "cid"
    pin_cid["example"] = KNOWN[0]
    cid_parameter = components["parameters"]["cid"]
    cid_parameter["schema"]["items"]["format"] = "cid"
    cid_parameter["example"] = KNOWN
