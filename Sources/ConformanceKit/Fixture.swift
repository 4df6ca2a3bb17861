import Foundation

/// One conformance case, decoded from one JSON file under `Fixtures/pinning-api/`.
///
/// The file format is described in `Fixtures/pinning-api/README.md` and, formally, in
/// `Fixtures/pinning-api/fixture.schema.json`.
public struct Fixture: Codable, Sendable {
    /// The file's path relative to `Fixtures/pinning-api/`, without `.json`.
    public var id: String
    /// What the case checks, as a statement (no "should", no "test that").
    public var description: String
    /// Free-form notes for maintainers.
    public var comment: String?
    /// How binding the case is; nil only in a fixture the lint rejects (then run as `required`).
    public var level: ConformanceLevel?
    /// The spec line range or RFC section the case checks.
    public var clause: Clause?
    /// The spec operations and rules the case checks; at least one.
    public var spec: [SpecReference]
    /// Labels such as `core`, `optional`, `compliance`, `kubo`.
    public var tags: [String]?
    /// What the target must provide for the case to run.
    public var requires: Requirements?
    /// The id of a released case this one replaces.
    public var supersedes: String?
    /// Steps run before `steps`; a failure here is reported as a set-up failure.
    public var setup: [Step]?
    /// The steps, run in order; the case stops at the first failing step.
    public var steps: [Step]
    /// Clean-up policy; only `auto` (delete every pin the case created) is defined.
    public var cleanup: String?

    /// Path of the file this fixture was loaded from, relative to the suite root. Not encoded.
    public var sourcePath: String?

    enum CodingKeys: String, CodingKey {
        case id, description, level, clause, comment, spec, tags, requires, supersedes, setup, steps, cleanup
    }

    public init(
        id: String,
        description: String,
        level: ConformanceLevel? = .required,
        clause: Clause? = nil,
        comment: String? = nil,
        spec: [SpecReference],
        tags: [String]? = nil,
        requires: Requirements? = nil,
        supersedes: String? = nil,
        setup: [Step]? = nil,
        steps: [Step],
        cleanup: String? = nil,
        sourcePath: String? = nil
    ) {
        self.id = id
        self.description = description
        self.level = level
        self.clause = clause
        self.comment = comment
        self.spec = spec
        self.tags = tags
        self.requires = requires
        self.supersedes = supersedes
        self.setup = setup
        self.steps = steps
        self.cleanup = cleanup
        self.sourcePath = sourcePath
    }

    /// The level the runner applies: a fixture without one counts as `required`.
    public var effectiveLevel: ConformanceLevel { level ?? .required }

    /// The directory part of the id (`v1.0.0/pins-add`), used to group results.
    public var group: String {
        guard let slash = id.lastIndex(of: "/") else { return "" }
        return String(id[..<slash])
    }
}

/// A link from a case to the spec: the operation and the rule it checks.
public struct SpecReference: Codable, Sendable, Hashable {
    /// One of `addPin`, `getPins`, `getPinByRequestId`, `replacePinByRequestId`, `deletePinByRequestId`.
    public var operation: String
    /// A short statement of the rule, e.g. "limit defaults to 10".
    public var rule: String
    /// Where the rule lives (spec section, component or reference doc).
    public var section: String?
    /// The spec's words, when quoting helps.
    public var quote: String?

    public init(operation: String, rule: String, section: String? = nil, quote: String? = nil) {
        self.operation = operation
        self.rule = rule
        self.section = section
        self.quote = quote
    }

    /// The five operationIds of the v1.0.0 spec.
    public static let knownOperations: Set<String> = [
        "addPin", "getPins", "getPinByRequestId", "replacePinByRequestId", "deletePinByRequestId",
    ]
}

/// Target features a case needs.
public struct Requirements: Codable, Sendable {
    /// `2` when the case needs a second tenant's token.
    public var tenants: Int?
    /// Named capabilities the target must declare, e.g. `resolves-cids`.
    public var capabilities: [String]?

    public init(tenants: Int? = nil, capabilities: [String]? = nil) {
        self.tenants = tenants
        self.capabilities = capabilities
    }
}

/// One request and what its response must look like.
public struct Step: Codable, Sendable {
    /// Human-readable name, unique within the case.
    public var name: String
    /// Run the step this many times; `{{i}}` is the 0-based iteration.
    public var repeatCount: Int?
    /// The request to send.
    public var request: RequestTemplate
    /// What the response must satisfy.
    public var expect: Expectation
    /// Poll until `expect` holds.
    public var eventually: Eventually?

    enum CodingKeys: String, CodingKey {
        case name
        case repeatCount = "repeat"
        case request, expect, eventually
    }

    public init(
        name: String,
        repeatCount: Int? = nil,
        request: RequestTemplate,
        expect: Expectation,
        eventually: Eventually? = nil
    ) {
        self.name = name
        self.repeatCount = repeatCount
        self.request = request
        self.expect = expect
        self.eventually = eventually
    }
}

/// Which credentials a request carries.
public enum AuthMode: String, Codable, Sendable, CaseIterable {
    /// `Authorization: Bearer <tokenA>` (the default).
    case tenantA
    /// `Authorization: Bearer <tokenB>`; the case must declare `requires.tenants: 2`.
    case tenantB
    /// No `Authorization` header.
    case none
    /// `Authorization: Bearer purposefullyInvalid` (what the compliance suite sends).
    case invalid
    /// `Authorization: Bearer ` with an empty token (what Kubo sends when no key is configured).
    case empty
    /// tokenA with its last character changed.
    case tampered
    /// `Authorization: Basic <base64(tokenA)>`.
    case wrongScheme = "wrong-scheme"
    /// `Authorization: bearer <tokenA>` (lowercase scheme name).
    case lowercaseScheme = "lowercase-scheme"
}

/// How placeholder values and `query` values are percent-encoded.
public enum QueryEncoding: String, Codable, Sendable {
    /// Go `url.Values.Encode()`: space as `+`, everything but `A-Za-z0-9-_.~` escaped (Kubo).
    case go
    /// JavaScript `encodeURIComponent`: space as `%20`, `!'()*` kept (the compliance suite).
    case js
}

/// One query parameter.
public struct QueryItem: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request as written in a fixture, before placeholders are resolved.
public struct RequestTemplate: Codable, Sendable {
    /// HTTP method.
    public var method: String
    /// Path below the target's base URL, e.g. `/pins/{{rid}}`; placeholder values are path-escaped.
    public var path: String
    /// Query parameters. A JSON object is sent with keys sorted (as Go does); an array of
    /// `[name, value]` pairs is sent in that order and may repeat a name.
    public var query: [QueryItem]?
    /// A literal, already-encoded query string (without `?`); placeholder values are query-escaped.
    public var rawQuery: String?
    /// Encoding for `query` values and for placeholders in `rawQuery`. Default `go`.
    public var encoding: QueryEncoding?
    /// Credentials. Default `tenantA`.
    public var auth: AuthMode?
    /// Extra request headers (never `Authorization`; use `auth`).
    public var headers: [String: String]?
    /// A JSON body, serialized compactly with sorted keys; `Content-Type: application/json` is added.
    public var json: JSONValue?
    /// A raw body, sent byte for byte after placeholder substitution.
    public var body: String?

    enum CodingKeys: String, CodingKey {
        case method, path, query, rawQuery, encoding, auth, headers, json, body
    }

    public init(
        method: String,
        path: String,
        query: [QueryItem]? = nil,
        rawQuery: String? = nil,
        encoding: QueryEncoding? = nil,
        auth: AuthMode? = nil,
        headers: [String: String]? = nil,
        json: JSONValue? = nil,
        body: String? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.rawQuery = rawQuery
        self.encoding = encoding
        self.auth = auth
        self.headers = headers
        self.json = json
        self.body = body
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decode(String.self, forKey: .method)
        path = try c.decode(String.self, forKey: .path)
        rawQuery = try c.decodeIfPresent(String.self, forKey: .rawQuery)
        encoding = try c.decodeIfPresent(QueryEncoding.self, forKey: .encoding)
        auth = try c.decodeIfPresent(AuthMode.self, forKey: .auth)
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers)
        json = try c.decodeIfPresent(JSONValue.self, forKey: .json)
        body = try c.decodeIfPresent(String.self, forKey: .body)
        if c.contains(.query) {
            if let object = try? c.decode([String: String].self, forKey: .query) {
                query = object.keys.sorted().map { QueryItem($0, object[$0] ?? "") }
            } else {
                let pairs = try c.decode([[String]].self, forKey: .query)
                query = try pairs.map { pair in
                    guard pair.count == 2 else {
                        throw DecodingError.dataCorruptedError(
                            forKey: .query,
                            in: c,
                            debugDescription: "query pairs must be [name, value]"
                        )
                    }
                    return QueryItem(pair[0], pair[1])
                }
            }
        } else {
            query = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(path, forKey: .path)
        if let query { try c.encode(query.map { [$0.name, $0.value] }, forKey: .query) }
        try c.encodeIfPresent(rawQuery, forKey: .rawQuery)
        try c.encodeIfPresent(encoding, forKey: .encoding)
        try c.encodeIfPresent(auth, forKey: .auth)
        try c.encodeIfPresent(headers, forKey: .headers)
        try c.encodeIfPresent(json, forKey: .json)
        try c.encodeIfPresent(body, forKey: .body)
    }
}

/// Expected HTTP status: one code or a list of acceptable codes.
public struct StatusExpectation: Codable, Sendable, Hashable {
    public var codes: [Int]

    public init(_ codes: [Int]) { self.codes = codes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let one = try? c.decode(Int.self) {
            codes = [one]
        } else {
            codes = try c.decode([Int].self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if codes.count == 1, let one = codes.first {
            try c.encode(one)
        } else {
            try c.encode(codes)
        }
    }

    public func accepts(_ status: Int) -> Bool { codes.contains(status) }

    var text: String { codes.map(String.init).joined(separator: " or ") }
}

/// A spec schema a response body is validated against.
public enum SchemaName: String, Codable, Sendable {
    case pinStatus = "PinStatus"
    case pinResults = "PinResults"
    case failure = "Failure"
    /// No body validation (e.g. `DELETE`'s empty 202).
    case none
}

/// Whether literal objects in `json` allow keys that the expectation does not list.
public enum ExtraKeys: String, Codable, Sendable {
    case allow, deny
}

/// What a response must satisfy.
public struct Expectation: Codable, Sendable {
    /// Acceptable status codes.
    public var status: StatusExpectation
    /// Header matchers, by case-insensitive name. Values are matchers on the header's string
    /// value (multiple fields are joined with `, `); `{"$absent": true}` requires absence.
    public var headers: [String: JSONValue]?
    /// A matcher for the parsed JSON body.
    public var json: JSONValue?
    /// The body must be empty (zero bytes).
    public var emptyBody: Bool?
    /// The spec schema to validate against; inferred from operation and status when absent.
    public var schema: SchemaName?
    /// Unknown keys in literal objects of `json`: `allow` (default) or `deny`.
    public var extra: ExtraKeys?

    public init(
        status: StatusExpectation,
        headers: [String: JSONValue]? = nil,
        json: JSONValue? = nil,
        emptyBody: Bool? = nil,
        schema: SchemaName? = nil,
        extra: ExtraKeys? = nil
    ) {
        self.status = status
        self.headers = headers
        self.json = json
        self.emptyBody = emptyBody
        self.schema = schema
        self.extra = extra
    }
}

/// Polling for asynchronous states.
public struct Eventually: Codable, Sendable {
    /// Give up after this long, e.g. `"30s"`.
    public var within: String
    /// Wait this long between attempts, e.g. `"500ms"`. The first attempt is immediate.
    public var every: String
    /// Keep polling only while the response satisfies this; otherwise fail at once.
    public var whileMatching: PollCondition?

    enum CodingKeys: String, CodingKey {
        case within, every
        case whileMatching = "while"
    }

    public init(within: String, every: String, whileMatching: PollCondition? = nil) {
        self.within = within
        self.every = every
        self.whileMatching = whileMatching
    }
}

/// The condition under which an `eventually` step keeps polling.
public struct PollCondition: Codable, Sendable {
    public var status: StatusExpectation?
    public var json: JSONValue?

    public init(status: StatusExpectation? = nil, json: JSONValue? = nil) {
        self.status = status
        self.json = json
    }
}

// MARK: - Durations

enum DurationText {
    /// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1d"` (also `"1.5s"`).
    static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" ends in "s"; make sure "500ms" is not read as "500m" + "s".
            if suffix == "s", number.hasSuffix("m") { continue }
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64((value * factor * 1000).rounded()))
        }
        return nil
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var secondsDouble: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
