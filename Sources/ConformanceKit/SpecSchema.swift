import Foundation

/// A strict validator for the three response schemas of the Pinning Services API v1.0.0
/// (`ipfs-pinning-service.yaml`, `components.schemas`), written by hand.
///
/// "Strict" follows what the public compliance suite's Joi schemas enforce (oas2joi + enjoi,
/// see `compliance-checks.md` A.3), tightened where real clients break:
/// - no keys beyond those the schema declares (`additionalProperties` is false in Joi's reading);
/// - no `null` anywhere (the compliance suite tolerates `pin.name: null`; we do not);
/// - no empty strings (Joi `string()` rejects `""`), including `meta`/`info` values;
/// - `created` matches the RFC 3339 §5.6 date-time regex, with a real calendar date;
/// - `status` is one of `queued`, `pinning`, `pinned`, `failed`;
/// - `delegates` has 1 to 20 unique strings, each ending in a `/p2p/<peerID>` component
///   (the spec's "All multiaddrs MUST end with /p2p/{peerID}"; Kubo fails without it);
/// - `origins` has at most 20 unique strings; `meta`/`info` have string values and at most 1000 keys;
/// - `count` is an integer literal in 0…2³¹−1; `results` has at most 1000 unique items.
public enum SpecSchema {
    /// The schemas a body can be checked against.
    public enum Kind: String, Sendable, CaseIterable {
        case pinStatus = "PinStatus"
        case pinResults = "PinResults"
        case failure = "Failure"
        case pin = "Pin"
    }

    /// The `Status` enum.
    public static let statuses: Set<String> = ["queued", "pinning", "pinned", "failed"]

    /// Validates a parsed body. Returns one message per violation (empty when valid), each
    /// prefixed with a JSON path such as `$.results[2].pin.cid`.
    public static func validate(_ json: JSONValue, as kind: Kind) -> [String] {
        let found = validateByStrictness(json, as: kind)
        return found.spec + found.strictOnly
    }

    /// Validates a parsed body, separating what the spec's schemas forbid (`spec`: wrong types,
    /// missing keys, `null` where OpenAPI 3.0 allows none, enum and size limits, `/p2p/`
    /// delegates) from what only the strict reading forbids (`strictOnly`: unknown keys and empty
    /// strings, which OpenAPI allows but the compliance suite's Joi schemas reject).
    public static func validateByStrictness(_ json: JSONValue, as kind: Kind) -> (spec: [String], strictOnly: [String]) {
        var v = Validator()
        switch kind {
        case .pinStatus: v.pinStatus(json, "$")
        case .pinResults: v.pinResults(json, "$")
        case .failure: v.failure(json, "$")
        case .pin: v.pin(json, "$")
        }
        return (v.problems, v.strictProblems)
    }

    /// Parses and validates a raw body.
    public static func validate(body: [UInt8], as kind: Kind) -> [String] {
        do {
            return validate(try JSONParser.parse(body), as: kind)
        } catch {
            return ["$: body is not valid JSON (\(error.description))"]
        }
    }

    /// Whether a string is a multiaddr whose last protocol is `/p2p/<peerID>`.
    public static func endsWithP2P(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard s.hasPrefix("/"), parts.count >= 3 else { return false }
        let name = parts[parts.count - 2]
        let id = parts[parts.count - 1]
        return name == "p2p" && !id.isEmpty
    }

    private struct Validator {
        var problems: [String] = []
        var strictProblems: [String] = []

        mutating func fail(_ path: String, _ message: String, strictOnly: Bool = false) {
            if strictOnly {
                strictProblems.append("\(path): \(message)")
            } else {
                problems.append("\(path): \(message)")
            }
        }

        mutating func object(
            _ value: JSONValue,
            _ path: String,
            required: [String],
            allowed: Set<String>
        ) -> [String: JSONValue]? {
            guard case .object(let o) = value else {
                fail(path, "expected object, got \(value.typeName)")
                return nil
            }
            for key in required where o[key] == nil {
                fail(path, "missing required key \"\(key)\"")
            }
            for key in o.keys.sorted() where !allowed.contains(key) {
                fail(path, "unknown key \"\(key)\" is not allowed", strictOnly: true)
            }
            for key in o.keys.sorted() {
                if case .null = o[key] { fail("\(path).\(key)", "null is not allowed") }
            }
            return o
        }

        mutating func nonEmptyString(_ value: JSONValue?, _ path: String, maxLength: Int? = nil) -> String? {
            guard let value else { return nil }
            if case .null = value { return nil }  // reported by object()
            guard case .string(let s) = value else {
                fail(path, "expected string, got \(value.typeName)")
                return nil
            }
            if s.isEmpty { fail(path, "empty string is not allowed", strictOnly: true) }
            if let maxLength, s.count > maxLength {
                fail(path, "longer than \(maxLength) characters (\(s.count))")
            }
            return s
        }

        mutating func stringArray(
            _ value: JSONValue?,
            _ path: String,
            minItems: Int,
            maxItems: Int
        ) -> [String]? {
            guard let value else { return nil }
            if case .null = value { return nil }
            guard case .array(let a) = value else {
                fail(path, "expected array, got \(value.typeName)")
                return nil
            }
            if a.count < minItems { fail(path, "needs at least \(minItems) item(s), has \(a.count)") }
            if a.count > maxItems { fail(path, "allows at most \(maxItems) items, has \(a.count)") }
            var seen: Set<String> = []
            var out: [String] = []
            for (i, item) in a.enumerated() {
                let p = "\(path)[\(i)]"
                guard let s = nonEmptyString(item, p) else {
                    if case .null = item { fail(p, "null is not allowed") }
                    continue
                }
                if !seen.insert(s).inserted { fail(p, "duplicate item \"\(s)\" (uniqueItems)") }
                out.append(s)
            }
            return out
        }

        mutating func stringMap(_ value: JSONValue?, _ path: String) {
            guard let value else { return }
            if case .null = value { return }
            guard case .object(let o) = value else {
                fail(path, "expected object of strings, got \(value.typeName)")
                return
            }
            if o.count > 1000 { fail(path, "allows at most 1000 keys, has \(o.count)") }
            for key in o.keys.sorted() {
                let p = "\(path).\(key)"
                guard let item = o[key] else { continue }
                if case .null = item {
                    fail(p, "null is not allowed")
                    continue
                }
                _ = nonEmptyString(item, p)
            }
        }

        mutating func pin(_ value: JSONValue, _ path: String) {
            guard
                let o = object(value, path, required: ["cid"], allowed: ["cid", "name", "origins", "meta"])
            else { return }
            _ = nonEmptyString(o["cid"], "\(path).cid")
            _ = nonEmptyString(o["name"], "\(path).name", maxLength: 255)
            _ = stringArray(o["origins"], "\(path).origins", minItems: 0, maxItems: 20)
            stringMap(o["meta"], "\(path).meta")
        }

        mutating func pinStatus(_ value: JSONValue, _ path: String) {
            guard
                let o = object(
                    value,
                    path,
                    required: ["requestid", "status", "created", "pin", "delegates"],
                    allowed: ["requestid", "status", "created", "pin", "delegates", "info"]
                )
            else { return }
            _ = nonEmptyString(o["requestid"], "\(path).requestid")
            if let status = o["status"], status != .null {
                if case .string(let s) = status {
                    if !SpecSchema.statuses.contains(s) {
                        fail("\(path).status", "\"\(s)\" is not one of queued, pinning, pinned, failed")
                    }
                } else {
                    fail("\(path).status", "expected string, got \(status.typeName)")
                }
            }
            if let created = nonEmptyString(o["created"], "\(path).created"), !created.isEmpty,
                !RFC3339.isValid(created)
            {
                fail("\(path).created", "\"\(created)\" is not an RFC 3339 date-time")
            }
            if let p = o["pin"], p != .null { pin(p, "\(path).pin") }
            if let delegates = stringArray(o["delegates"], "\(path).delegates", minItems: 1, maxItems: 20) {
                for (i, d) in delegates.enumerated() where !SpecSchema.endsWithP2P(d) {
                    fail("\(path).delegates[\(i)]", "\"\(d)\" does not end with /p2p/<peerID>")
                }
            }
            stringMap(o["info"], "\(path).info")
        }

        mutating func pinResults(_ value: JSONValue, _ path: String) {
            guard let o = object(value, path, required: ["count", "results"], allowed: ["count", "results"]) else {
                return
            }
            if let count = o["count"], count != .null {
                if case .int(let n) = count {
                    if n < 0 { fail("\(path).count", "must be ≥ 0, is \(n)") }
                    if n > Int64(Int32.max) { fail("\(path).count", "does not fit int32 (\(n))") }
                } else {
                    fail("\(path).count", "expected integer, got \(count.typeName) (\(count.serialized()))")
                }
            }
            guard let results = o["results"], results != .null else { return }
            guard case .array(let items) = results else {
                fail("\(path).results", "expected array, got \(results.typeName)")
                return
            }
            if items.count > 1000 { fail("\(path).results", "allows at most 1000 items, has \(items.count)") }
            var seenIDs: [String: Int] = [:]
            for (i, item) in items.enumerated() {
                pinStatus(item, "\(path).results[\(i)]")
                if case .string(let rid) = item["requestid"] {
                    if let j = seenIDs[rid] {
                        fail("\(path).results[\(i)]", "duplicate of results[\(j)] (requestid \(rid))")
                    } else {
                        seenIDs[rid] = i
                    }
                }
            }
            // Items without a string requestid are already invalid; still report exact duplicates.
            let anonymous = items.indices.filter { items[$0]["requestid"]?.stringValue == nil }
            for (n, i) in anonymous.enumerated() {
                for j in anonymous.dropFirst(n + 1) where items[i].jsonEquals(items[j]) {
                    fail("\(path).results[\(j)]", "equal to results[\(i)] (uniqueItems)")
                }
            }
        }

        mutating func failure(_ value: JSONValue, _ path: String) {
            guard let o = object(value, path, required: ["error"], allowed: ["error"]) else { return }
            guard let error = o["error"], error != .null else { return }
            guard let e = object(error, "\(path).error", required: ["reason"], allowed: ["reason", "details"]) else {
                return
            }
            _ = nonEmptyString(e["reason"], "\(path).error.reason")
            _ = nonEmptyString(e["details"], "\(path).error.details")
        }
    }
}
