import ConformanceKit
import Foundation
import Pins
import Seams

/// A Pinning Services API v1.0.0 service in memory, answering the runner's requests directly
/// (no HTTP, no socket), optionally with one ``Defect``.
///
/// Two tenants (one per known bearer token); every pin stays `queued`; `created` is RFC 3339
/// with six fraction digits, unique and 1 ms apart; listings are newest first with `count` =
/// all matches.
///
/// With `extras` (the default) it also does what the recommended and anchorage cases check:
/// `WWW-Authenticate` on 401, any-case `bearer`, CID validation, `+` as a space in queries,
/// repeated `status` parameters, lenient `cid` (more than 10) and `origins` (more than 20)
/// limits, a 1 MiB body limit, and the pinned-only default only when no filter is given. Without
/// them it is the faithful minimal service: every required rule and nothing more (the schema's
/// `maxItems` enforced, the pinned-only default whenever `status` is missing).
actor InMemoryPinningService: ConformanceTransport {
    private struct Pin {
        var id: String
        var owner: Int
        var cid: String
        var name: String?
        var origins: [String]
        var meta: [String: String]
        var created: Timestamp
    }

    private struct APIError: Error {
        var status: Int
        var reason: String
        var details: String
    }

    private static let statuses: Set<String> = ["queued", "pinning", "pinned", "failed"]
    private static let delegate = "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWQhNeW29pi2JfsdAPQbRuC4Ax3nrPhkwsUUiLW72gWiDL"
    private static let maxBody = 1 << 20

    private let tokens: [String]
    private let defect: Defect?
    private let extras: Bool
    private var pins: [String: Pin] = [:]
    /// Pins replaced away; only consulted with ``Defect/oldIDSurvivesReplace``.
    private var replaced: [String: Pin] = [:]
    private let epoch: Timestamp
    private var serial: Int64 = 0

    nonisolated var isRemote: Bool { false }

    init(tokens: [String], defect: Defect? = nil, extras: Bool = true) {
        self.tokens = tokens
        self.defect = defect
        self.extras = extras
        let ms = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        epoch = Timestamp(microsecondsSinceEpoch: ms * 1000)
    }

    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        do {
            return try handle(request)
        } catch {
            var body: [String: JSONValue] = ["reason": .string(error.reason)]
            if !error.details.isEmpty { body["details"] = .string(error.details) }
            var headers = [("Content-Type", defect == .textPlainErrors ? "text/plain; charset=utf-8" : "application/json")]
            if error.status == 401, extras { headers.append(("WWW-Authenticate", "Bearer")) }
            return ConformanceResponse(
                status: error.status,
                headers: headers,
                body: JSONValue.object(["error": .object(body)]).serializedBytes()
            )
        }
    }

    // MARK: Routing

    private func handle(_ request: ConformanceRequest) throws(APIError) -> ConformanceResponse {
        let path = request.pathOnly
        guard path == "/pins" || path.hasPrefix("/pins/") else {
            throw APIError(status: 404, reason: "NOT_FOUND", details: "no route \(path)")
        }
        let owner = try authenticate(request)
        if extras, (request.body?.count ?? 0) > Self.maxBody {
            throw APIError(status: 413, reason: "PAYLOAD_TOO_LARGE", details: "the body exceeds \(Self.maxBody) bytes")
        }
        if path == "/pins" {
            switch request.method {
            case "GET": return try list(owner, request.query)
            case "POST": return try add(owner, request.body)
            default: throw APIError(status: 405, reason: "METHOD_NOT_ALLOWED", details: "\(request.method) /pins")
            }
        }
        let segment = String(path.dropFirst("/pins/".count))
        let id = segment.removingPercentEncoding ?? segment
        switch request.method {
        case "GET": return try get(owner, id)
        case "POST": return try replace(owner, id, request.body)
        case "DELETE": return try delete(owner, id)
        default: throw APIError(status: 405, reason: "METHOD_NOT_ALLOWED", details: "\(request.method) /pins/{requestid}")
        }
    }

    private func authenticate(_ request: ConformanceRequest) throws(APIError) -> Int {
        guard let header = request.header("Authorization") else {
            throw APIError(status: 401, reason: "UNAUTHORIZED", details: "missing bearer token")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        let scheme = extras ? parts[0].lowercased() : String(parts[0])
        guard parts.count == 2, scheme == (extras ? "bearer" : "Bearer"), !parts[1].isEmpty,
            let owner = tokens.firstIndex(of: String(parts[1]))
        else {
            throw APIError(status: 401, reason: "UNAUTHORIZED", details: "invalid bearer token")
        }
        return owner
    }

    // MARK: Operations

    private func add(_ owner: Int, _ body: [UInt8]?) throws(APIError) -> ConformanceResponse {
        let pin = try newPin(owner, body)
        pins[pin.id] = pin
        return json(202, statusJSON(pin))
    }

    private func get(_ owner: Int, _ id: String) throws(APIError) -> ConformanceResponse {
        if let pin = pins[id], pin.owner == owner { return json(200, statusJSON(pin)) }
        if defect == .oldIDSurvivesReplace, let pin = replaced[id], pin.owner == owner {
            return json(200, statusJSON(pin))
        }
        throw notFound(id)
    }

    private func replace(_ owner: Int, _ id: String, _ body: [UInt8]?) throws(APIError) -> ConformanceResponse {
        let pin = try newPin(owner, body)
        guard let old = pins[id], old.owner == owner else { throw notFound(id) }
        pins[id] = nil
        replaced[id] = old
        pins[pin.id] = pin
        return json(202, statusJSON(pin))
    }

    private func delete(_ owner: Int, _ id: String) throws(APIError) -> ConformanceResponse {
        guard let pin = pins[id], pin.owner == owner else { throw notFound(id) }
        pins[id] = nil
        return ConformanceResponse(status: 202)
    }

    private func list(_ owner: Int, _ rawQuery: String?) throws(APIError) -> ConformanceResponse {
        var values: [String: [String]] = [:]
        // Form decoding (`+` is a space) is what Kubo needs; RFC 3986 percent-decoding is the rule.
        let form = extras
        func decode(_ text: Substring) -> String {
            form ? Self.formDecode(text) : (text.removingPercentEncoding ?? String(text))
        }
        for part in (rawQuery ?? "").split(separator: "&") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            values[decode(pair[0]), default: []].append(pair.count > 1 ? decode(pair[1]) : "")
        }
        func bad(_ details: String) -> APIError { APIError(status: 400, reason: "BAD_REQUEST", details: details) }
        // Comma-separated lists may also come as repeated parameters.
        // Without extras, one parameter (the last) holds the whole comma-separated list.
        func list(_ key: String) -> [String]? {
            let raw = extras ? values[key]?.joined(separator: ",") : values[key]?.last
            return raw.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }

        let cids = list("cid")
        if !extras, let cids, cids.count > 10 { throw bad("cid allows at most 10 items") }
        for cid in cids ?? [] where extras {
            if case .failure = CIDValidation.validate(cid) { throw bad("invalid cid \"\(cid)\"") }
        }
        let name = values["name"]?.last.flatMap { $0.isEmpty ? nil : $0 }
        if let name, name.utf8.count > 255 { throw bad("name is longer than 255 bytes") }
        let match = values["match"]?.last ?? "exact"
        guard ["exact", "iexact", "partial", "ipartial"].contains(match) else { throw bad("unknown match \"\(match)\"") }
        let statusFilter = list("status")
        for status in statusFilter ?? [] where !Self.statuses.contains(status) {
            throw bad("unknown status \"\(status)\"")
        }
        func instant(_ key: String) throws(APIError) -> ParsedDateTime? {
            guard let text = values[key]?.last else { return nil }
            guard let parsed = ParsedDateTime(rfc3339: text) else { throw bad("\(key) is not an RFC 3339 date-time") }
            return parsed
        }
        let before = try instant("before")
        let after = try instant("after")
        var limit = 10
        if let text = values["limit"]?.last {
            guard let n = Int(text), (1...1000).contains(n) else { throw bad("limit must be an integer in 1…1000") }
            limit = n
        }
        var meta: [String: String]?
        if let text = values["meta"]?.last {
            guard case .object(let object)? = try? JSONParser.parse(text) else { throw bad("meta is not a JSON object") }
            var map: [String: String] = [:]
            for (key, value) in object {
                guard case .string(let s) = value else { throw bad("meta values must be strings") }
                map[key] = s
            }
            meta = map
        }

        let hasFilter = cids != nil || name != nil || before != nil || after != nil || meta != nil
        let statuses = Set(statusFilter ?? (hasFilter && extras ? Array(Self.statuses) : ["pinned"]))
        func matches(_ pin: Pin, honouringBefore: Bool) -> Bool {
            guard pin.owner == owner, statuses.contains("queued") else { return false }
            if let cids, !cids.contains(pin.cid) { return false }
            if let name {
                guard let pinName = pin.name else { return false }
                switch match {
                case "iexact": if pinName.lowercased() != name.lowercased() { return false }
                case "partial": if !pinName.contains(name) { return false }
                case "ipartial": if !pinName.lowercased().contains(name.lowercased()) { return false }
                default: if pinName != name { return false }
                }
            }
            if let meta, meta.contains(where: { pin.meta[$0.key] != $0.value }) { return false }
            if honouringBefore, let before, !(pin.created < before.ceiling) { return false }
            if let after, !(pin.created > after.floor) { return false }
            return true
        }
        let selected = pins.values.filter { matches($0, honouringBefore: true) }
            .sorted { defect == .oldestFirst ? $0.created < $1.created : $0.created > $1.created }
        let page = Array(selected.prefix(limit))
        var count = selected.count
        if defect == .countIgnoresBefore { count = pins.values.count { matches($0, honouringBefore: false) } }
        if defect == .countIsPageLength { count = page.count }
        return json(200, .object(["count": .int(Int64(count)), "results": .array(page.map(statusJSON))]))
    }

    // MARK: Helpers

    /// Validates a `Pin` body and mints a new pin object (new id, new `created`).
    private func newPin(_ owner: Int, _ body: [UInt8]?) throws(APIError) -> Pin {
        func bad(_ details: String) -> APIError { APIError(status: 400, reason: "BAD_REQUEST", details: details) }
        guard let body, !body.isEmpty else { throw bad("the body is empty") }
        guard case .object(let object)? = try? JSONParser.parse(body) else { throw bad("the body is not a JSON object") }
        guard case .string(let cid)? = object["cid"], !cid.isEmpty else { throw bad("cid must be a non-empty string") }
        if extras, case .failure = CIDValidation.validate(cid) { throw bad("invalid cid \"\(cid)\"") }
        var name: String?
        switch object["name"] {
        case nil, .null?: break
        case .string(let s)?:
            guard s.utf8.count <= 255 else { throw bad("name is longer than 255 bytes") }
            name = s.isEmpty ? nil : s
        default: throw bad("name must be a string")
        }
        var origins: [String] = []
        switch object["origins"] {
        case nil, .null?: break
        case .array(let items)?:
            if !extras, items.count > 20 { throw bad("origins allows at most 20 items") }
            for item in items {
                guard case .string(let s) = item, !s.isEmpty else { throw bad("origins must be strings") }
                if !origins.contains(s), origins.count < 20 { origins.append(s) }
            }
        default: throw bad("origins must be an array of strings")
        }
        var meta: [String: String] = [:]
        switch object["meta"] {
        case nil, .null?: break
        case .object(let entries)?:
            for (key, value) in entries {
                guard case .string(let s) = value else { throw bad("meta values must be strings") }
                if !s.isEmpty { meta[key] = s }
            }
        default: throw bad("meta must be an object of strings")
        }
        serial += 1
        return Pin(
            id: UUID().uuidString.lowercased(),
            owner: owner,
            cid: cid,
            name: name,
            origins: origins,
            meta: meta,
            created: epoch.adding(microseconds: serial * 1000)
        )
    }

    private func statusJSON(_ pin: Pin) -> JSONValue {
        var body: [String: JSONValue] = ["cid": .string(pin.cid)]
        if let name = pin.name {
            body["name"] = .string(name)
        } else if defect == .nullOptionalFields {
            body["name"] = .null
        }
        if !pin.origins.isEmpty { body["origins"] = .array(pin.origins.map(JSONValue.string)) }
        if !pin.meta.isEmpty { body["meta"] = .object(pin.meta.mapValues(JSONValue.string)) }
        var status: [String: JSONValue] = [
            "requestid": .string(pin.id), "status": .string("queued"), "created": .string(pin.created.rfc3339),
            "pin": .object(body), "delegates": .array([.string(Self.delegate)]),
        ]
        if defect == .nullOptionalFields { status["info"] = .null }
        if defect == .vendorKeyInPinStatus { status["vendor"] = .string("in-memory") }
        return .object(status)
    }

    private func json(_ status: Int, _ value: JSONValue) -> ConformanceResponse {
        ConformanceResponse(status: status, headers: [("Content-Type", "application/json")], body: value.serializedBytes())
    }

    private func notFound(_ id: String) -> APIError {
        APIError(status: 404, reason: "NOT_FOUND", details: "no pin with requestid \"\(id.prefix(64))\"")
    }

    /// `application/x-www-form-urlencoded` decoding, as real clients encode queries: `+` is a
    /// space, `%2C` a comma, `%2B` a plus.
    private static func formDecode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
