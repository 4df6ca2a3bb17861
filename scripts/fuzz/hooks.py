"""schemathesis hooks for anchorage (loaded through SCHEMATHESIS_HOOKS=hooks).

The spec types every CID as a bare string and its examples are not CIDs, so a fuzzer that follows
it sends pins the server must reject (400 INVALID_CID) and never reaches the storage layer. These
hooks annotate the fuzzer's in-memory copy of the document (the file is untouched):

- CIDs are drawn from `cids.valid_cids`: `format: cid` on `Pin.cid` and on the items of the `cid`
  query parameter, and real CIDs as their examples. Negative cases still break the CID fields
  (wrong types, missing `cid`), and test_storage.py sends malformed CID strings on purpose.
- OpenAPI links from every response that names a pin (`requestid`) to the operations on it.
  schemathesis cannot infer them (it takes the nested `pin` for the resource), and without them
  there is no stateful phase: no create-replace-delete-read sequences, and the use_after_free and
  ensure_resource_availability checks never run.
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

    def links(pointer, *operation_ids):
        return {
            operation_id: {"operationId": operation_id, "parameters": {"requestid": f"$response.body#{pointer}"}}
            for operation_id in operation_ids
        }

    by_request_id = ("getPinByRequestId", "replacePinByRequestId", "deletePinByRequestId")
    paths = raw_schema["paths"]
    paths["/pins"]["post"]["responses"]["202"]["links"] = links("/requestid", *by_request_id)
    paths["/pins"]["get"]["responses"]["200"]["links"] = links("/results/0/requestid", *by_request_id)
    paths["/pins/{requestid}"]["post"]["responses"]["202"]["links"] = links("/requestid", *by_request_id)
    paths["/pins/{requestid}"]["get"]["responses"]["200"]["links"] = links("/requestid", *by_request_id)
