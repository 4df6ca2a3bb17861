import Foundation
import Seams

/// A validated `GET /pins` query. Filters combine with AND.
public struct PinQuery: Sendable, Equatable {
    /// Match any of these CIDs, as Kubo identifies them (`CIDKey.canonical`): `cid=BAFK…` finds
    /// a pin submitted as `bafk…`.
    public var cids: [String] = []
    public var name: String?
    public var match: TextMatch = .exact
    /// The effective status set, after the default rule has been applied.
    public var statuses: Set<PinStatus> = [.pinned]
    /// `created < before`, exact at microsecond precision.
    public var before: ParsedDateTime?
    /// `created > after`, exact at microsecond precision.
    public var after: ParsedDateTime?
    public var limit: Int = 10
    /// Every pair must be present in the pin's `meta`.
    public var meta: [String: String] = [:]
    /// Stop adding results past about this many bytes of stored pin data (at least one result
    /// is always returned; `count` stays the total). `limits.maxResponseBytes`.
    public var byteBudget: Int = .max

    public init() {}

    /// Whether any filter (besides `status`, `limit` and a `match` without `name`) was given.
    public var hasFilter: Bool {
        !cids.isEmpty || name != nil || before != nil || after != nil || !meta.isEmpty
    }

    /// Parses a raw (still percent-encoded) query string the way real clients send it:
    /// `+` is a space (Go's `url.Values`), list commas may be `%2C`, list parameters may also
    /// repeat. Any malformed value is a 400 naming the parameter.
    public init(rawQuery: Substring?, limits: Limits, options: APIOptions) throws(PinsError) {
        self.init()
        self.limit = limits.defaultListLimit
        self.byteBudget = limits.maxResponseBytes
        let raw = rawQuery ?? ""
        guard raw.utf8.count <= limits.maxQueryBytes else {
            throw .badRequest(reason: "INVALID_QUERY", details: "the query string is longer than \(limits.maxQueryBytes) bytes")
        }
        var seen = Set<String>()
        var statuses: Set<PinStatus>?
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.decode(parts[0]) else {
                throw .badRequest(reason: "INVALID_QUERY", details: "malformed percent-encoding in the query string")
            }
            guard let value = Self.decode(parts.count > 1 ? parts[1] : "") else {
                throw .badRequest(reason: "INVALID_QUERY", details: "malformed percent-encoding in \"\(key)\"")
            }
            let isList = key == "cid" || key == "status"
            if !isList, ["name", "match", "before", "after", "limit", "meta"].contains(key) {
                guard seen.insert(key).inserted else {
                    throw .badRequest(reason: "INVALID_QUERY", details: "\"\(key)\" is given more than once")
                }
            }
            switch key {
            case "cid":
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let cid = String(item)
                    if case .failure(let error) = CIDValidation.validate(cid) { throw error }
                    let key = CIDKey.canonical(cid) ?? cid
                    if !cids.contains(key) { cids.append(key) }
                }
                guard cids.count <= limits.maxCidsPerQuery else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"cid\" lists more than \(limits.maxCidsPerQuery) CIDs"
                    )
                }
            case "name":
                guard value.utf8.count <= limits.maxNameBytes else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"name\" is longer than \(limits.maxNameBytes) bytes"
                    )
                }
                if let c = TextRules.controlCharacter(in: value) {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"name\" contains a control character (\(TextRules.codePoint(c)))"
                    )
                }
                name = value.isEmpty ? nil : value
            case "match":
                guard let m = TextMatch(rawValue: value) else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"match\" must be one of exact, iexact, partial, ipartial (got \"\(value.prefix(32))\")"
                    )
                }
                match = m
            case "status":
                var set = statuses ?? []
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let s = PinStatus(rawValue: String(item)) else {
                        throw .badRequest(
                            reason: "INVALID_QUERY",
                            details: "\"status\" must be a comma list of queued, pinning, pinned, failed (got \"\(item.prefix(32))\")"
                        )
                    }
                    set.insert(s)
                }
                statuses = set
            case "before", "after":
                guard let t = ParsedDateTime(rfc3339: value) else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"\(key)\" must be an RFC 3339 date-time such as 2020-07-27T17:32:28.276Z (got \"\(value.prefix(40))\")"
                    )
                }
                if key == "before" { before = t } else { after = t }
            case "limit":
                guard let n = Int(value), n >= 1, n <= limits.maxListLimit else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"limit\" must be an integer from 1 to \(limits.maxListLimit) (got \"\(value.prefix(32))\")"
                    )
                }
                limit = n
            case "meta":
                guard let data = value.data(using: .utf8),
                    let json = try? JSONSerialization.jsonObject(with: data, options: [])
                else {
                    throw .badRequest(
                        reason: "INVALID_QUERY",
                        details: "\"meta\" must be a URL-encoded JSON object such as {\"app_id\":\"x\"}"
                    )
                }
                do {
                    meta = try PinRequest.stringMap(json, field: "meta", limits: limits)
                } catch {
                    throw .badRequest(reason: "INVALID_QUERY", details: error.details ?? "invalid \"meta\"")
                }
            default:
                continue  // unknown parameters are ignored, as HTTP APIs conventionally do
            }
        }
        if let statuses {
            self.statuses = statuses
        } else {
            self.statuses = options.strictStatusDefault || !hasFilter ? [.pinned] : Set(PinStatus.allCases)
        }
    }

    /// Percent-decodes a query component, reading `+` as a space. Nil on malformed escapes or
    /// bytes that are not UTF-8.
    static func decode(_ s: Substring) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            switch c {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let h = it.next(), let l = it.next(), let hv = hex(h), let lv = hex(l) else { return nil }
                out.append(hv << 4 | lv)
            default: out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
