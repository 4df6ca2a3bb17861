import Foundation

extension PinRequest {
    /// Validates a decoded JSON `Pin` body (the output of `JSONSerialization`) against the spec
    /// and our limits. Unknown keys are ignored; `null` optional fields count as absent.
    public init(json: Any, limits: Limits) throws(PinsError) {
        guard let object = json as? [String: Any] else {
            throw .badRequest(reason: "INVALID_BODY", details: "the request body must be a JSON object (a Pin)")
        }
        guard let rawCID = object["cid"], !(rawCID is NSNull) else {
            throw .badRequest(reason: "INVALID_BODY", details: "\"cid\" is required")
        }
        guard let cid = Self.string(rawCID) else {
            throw .badRequest(reason: "INVALID_CID", details: "\"cid\" must be a string")
        }
        if case .failure(let error) = CIDValidation.validate(cid) { throw error }

        var name: String?
        if let rawName = object["name"], !(rawName is NSNull) {
            guard let value = Self.string(rawName) else {
                throw .badRequest(reason: "INVALID_NAME", details: "\"name\" must be a string")
            }
            guard value.utf8.count <= limits.maxNameBytes else {
                throw .badRequest(
                    reason: "INVALID_NAME",
                    details: "\"name\" is \(value.utf8.count) bytes; at most \(limits.maxNameBytes) are allowed"
                )
            }
            if let c = TextRules.controlCharacter(in: value) {
                throw .badRequest(reason: "INVALID_NAME", details: "\"name\" contains a control character (\(TextRules.codePoint(c)))")
            }
            name = value.isEmpty ? nil : value
        }

        var origins: [String] = []
        if let rawOrigins = object["origins"], !(rawOrigins is NSNull) {
            guard let list = rawOrigins as? [Any] else {
                throw .badRequest(reason: "INVALID_ORIGINS", details: "\"origins\" must be an array of multiaddr strings")
            }
            var seen = Set<String>()
            for item in list {
                guard let addr = Self.string(item) else {
                    throw .badRequest(reason: "INVALID_ORIGINS", details: "every entry of \"origins\" must be a string")
                }
                // Lenient on purpose: Kubo sends every listen address it has (private, loopback,
                // new transports, often more than 20). Keep plausible ones, drop the rest.
                guard origins.count < limits.maxStoredOrigins, addr.hasPrefix("/"),
                    addr.utf8.count <= limits.maxOriginBytes, TextRules.controlCharacter(in: addr) == nil,
                    seen.insert(addr).inserted
                else { continue }
                origins.append(addr)
            }
        }

        var meta: [String: String] = [:]
        if let rawMeta = object["meta"], !(rawMeta is NSNull) {
            meta = try Self.stringMap(rawMeta, field: "meta", limits: limits)
        }
        self.init(cid: cid, name: name, origins: origins, meta: meta)
    }

    /// Validates a JSON object whose values must all be strings (`PinMeta`).
    static func stringMap(_ raw: Any, field: String, limits: Limits) throws(PinsError) -> [String: String] {
        guard let dict = raw as? [String: Any] else {
            throw .badRequest(reason: "INVALID_META", details: "\"\(field)\" must be a JSON object with string values")
        }
        guard dict.count <= limits.maxMetaKeys else {
            throw .badRequest(
                reason: "INVALID_META",
                details: "\"\(field)\" has \(dict.count) keys; at most \(limits.maxMetaKeys) are allowed"
            )
        }
        var out: [String: String] = [:]
        var bytes = 0
        for (key, value) in dict {
            guard let s = string(value) else {
                throw .badRequest(
                    reason: "INVALID_META",
                    details: "\"\(field)\" value for key \"\(key.prefix(64))\" must be a string"
                )
            }
            if let c = TextRules.controlCharacter(in: key) {
                throw .badRequest(
                    reason: "INVALID_META",
                    details: "a \"\(field)\" key contains a control character (\(TextRules.codePoint(c)))"
                )
            }
            if TextRules.containsNUL(s) {
                throw .badRequest(
                    reason: "INVALID_META",
                    details: "\"\(field)\" value for key \"\(key.prefix(64))\" contains U+0000"
                )
            }
            bytes += key.utf8.count + s.utf8.count
            out[key] = s
        }
        guard bytes <= limits.maxMetaBytes else {
            throw .badRequest(
                reason: "INVALID_META",
                details: "\"\(field)\" is \(bytes) bytes; at most \(limits.maxMetaBytes) are allowed"
            )
        }
        return out
    }

    /// A JSON string, and only a string: `JSONSerialization` bridges numbers and booleans to
    /// `NSNumber`, which must not pass as text.
    static func string(_ value: Any) -> String? {
        if value is NSNumber { return nil }
        return value as? String
    }
}
