"""schemathesis hooks for anchorage (loaded through SCHEMATHESIS_HOOKS=hooks by scripts/fuzz.sh).

They change the fuzzer's in-memory copy of the spec (the file is untouched) and judge failures:

- CIDs are drawn from `cids.valid_cids`: `format: cid` on `Pin.cid` and on the items of the `cid`
  query parameter, and real CIDs as their examples. The spec types them as bare strings and its
  examples ("QmCIDToBePinned", "Qm1") are not CIDs, so without this every positive pin is a 400
  and the storage layer is never reached. Negative cases still break the CID fields (wrong types,
  missing `cid`), and test_storage.py sends malformed CID strings on purpose.
- OpenAPI links from every response that names a pin (`requestid`) to the operations on it.
  schemathesis cannot infer them (it takes the nested `pin` for the resource), and without them
  there is no stateful phase: no create-replace-delete-read sequences, and the use_after_free
  and ensure_resource_availability checks never run.
- A failure that one of anchorage's deliberate differences from the spec explains (contract.py)
  is dropped and written to $FUZZ_EXCUSED_LOG, which the summary counts by rule: a 400 for a
  request the server's documented limits refuse (positive_data_acceptance), a 2xx for a request
  its documented leniency accepts (negative_data_rejection). Each is checked against the request
  itself, not the server's word. FUZZ_STRICT=1 keeps every failure.
"""

import json
import os
from urllib.parse import urlsplit

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData

from cids import KNOWN, valid_cids
from contract import Relaxed, read_query, refusal

schemathesis.openapi.format("cid", valid_cids)

STRICT = os.environ.get("FUZZ_STRICT") == "1"
EXCUSED_LOG = os.environ.get("FUZZ_EXCUSED_LOG")
RELAXED = Relaxed(os.environ["ANCHORAGE_FUZZ_SPEC"])


@schemathesis.hook
def before_load_schema(context, raw_schema):
    components = raw_schema["components"]
    pin_cid = components["schemas"]["Pin"]["properties"]["cid"]
    pin_cid["format"] = "cid"
    pin_cid["example"] = KNOWN[0]
    cid_parameter = components["parameters"]["cid"]
    cid_parameter["schema"]["items"]["format"] = "cid"
    cid_parameter["example"] = KNOWN

    def links(pointer):
        return {
            operation_id: {"operationId": operation_id, "parameters": {"requestid": f"$response.body#{pointer}"}}
            for operation_id in ("getPinByRequestId", "replacePinByRequestId", "deletePinByRequestId")
        }

    paths = raw_schema["paths"]
    paths["/pins"]["post"]["responses"]["202"]["links"] = links("/requestid")
    paths["/pins/{requestid}"]["post"]["responses"]["202"]["links"] = links("/requestid")
    paths["/pins/{requestid}"]["get"]["responses"]["200"]["links"] = links("/requestid")


def excuse(failure, response):
    """The deliberate difference from the spec that explains this failure, or None."""
    request = response.request
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    pin, query = None, None
    if request.method == "POST" and body:
        try:
            pin = json.loads(body)
        except ValueError:
            return None
    elif request.method == "GET" and urlsplit(request.url).path.rstrip("/").endswith("/pins"):
        query = read_query(request.url)
    if pin is None and query is None:
        return None
    if isinstance(failure, RejectedPositiveData) and response.status_code == 400:
        return refusal(pin=pin, query=query, body_bytes=len(body), query_bytes=len(urlsplit(request.url).query))
    if isinstance(failure, AcceptedNegativeData) and 200 <= response.status_code < 300:
        if RELAXED.lenient_reading(pin=pin, query=query):
            return "accepted by design: repeated or up to 100 CIDs, repeated statuses, any origins, null as absent"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if STRICT:
        return True
    why = excuse(failure, response)
    if why is None:
        return True
    if EXCUSED_LOG:
        detail = next((line for line in failure.message.split("\n") if line.startswith("Invalid component")), "")
        record = {"rule": why, "check": failure.title, "operation": failure.operation, "detail": detail}
        with open(EXCUSED_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    return False
