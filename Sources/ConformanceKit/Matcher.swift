import Foundation

/// The matcher language of fixture expectations.
///
/// A JSON literal matches by equality (numbers numerically, objects key by key, arrays element by
/// element). An object whose keys all start with `$` is a matcher; several `$` keys in one object
/// must all hold. See `Fixtures/pinning-api/README.md` for the list.
enum Matcher {
    /// Every matcher keyword.
    static let keywords: Set<String> = [
        "$type", "$in", "$notIn", "$not", "$anyOf", "$match", "$absent", "$any", "$capture", "$collect",
        "$count", "$minItems", "$maxItems", "$each", "$first", "$last", "$unordered", "$contains",
        "$uniqueBy", "$sorted", "$gte", "$gt", "$lte", "$lt",
    ]

    /// Names accepted by `$type`.
    static let typeNames: Set<String> = [
        "null", "boolean", "integer", "number", "string", "array", "object", "nonempty-string", "rfc3339", "cid",
        "requestid", "multiaddr", "p2p-multiaddr",
    ]

    /// Whether a JSON object is a matcher object (non-empty, every key starts with `$`).
    static func isMatcherObject(_ o: [String: JSONValue]) -> Bool {
        !o.isEmpty && o.keys.allSatisfy { $0.hasPrefix("$") }
    }

    /// Mutable state threaded through a match: captures and the extra-keys policy.
    struct Context {
        var captures: [String: JSONValue]
        var denyExtraKeys: Bool
    }

    /// Matches `actual` (nil = absent) against `expected`; appends failure messages.
    static func match(
        _ expected: JSONValue,
        _ actual: JSONValue?,
        path: String,
        context: inout Context,
        failures: inout [String]
    ) {
        if case .object(let o) = expected, isMatcherObject(o) {
            matchOperators(o, actual, path: path, context: &context, failures: &failures)
            return
        }
        guard let actual else {
            failures.append("\(path): missing (expected \(brief(expected)))")
            return
        }
        switch expected {
        case .object(let e):
            guard case .object(let a) = actual else {
                failures.append("\(path): expected object, got \(actual.typeName) \(brief(actual))")
                return
            }
            for key in e.keys.sorted() {
                guard let sub = e[key] else { continue }
                match(sub, a[key], path: "\(path).\(key)", context: &context, failures: &failures)
            }
            if context.denyExtraKeys {
                for key in a.keys.sorted() where e[key] == nil {
                    failures.append("\(path).\(key): unexpected key (extra: deny)")
                }
            }
        case .array(let e):
            guard case .array(let a) = actual else {
                failures.append("\(path): expected array, got \(actual.typeName) \(brief(actual))")
                return
            }
            if e.count != a.count {
                failures.append("\(path): expected \(e.count) item(s), got \(a.count)")
                return
            }
            for (i, sub) in e.enumerated() {
                match(sub, a[i], path: "\(path)[\(i)]", context: &context, failures: &failures)
            }
        default:
            if !expected.jsonEquals(actual) {
                failures.append("\(path): expected \(brief(expected)), got \(brief(actual))")
            }
        }
    }

    /// Whether `actual` matches, without keeping captures or messages.
    static func matches(_ expected: JSONValue, _ actual: JSONValue?, context: Context) -> Bool {
        var scratch = context
        var failures: [String] = []
        match(expected, actual, path: "$", context: &scratch, failures: &failures)
        return failures.isEmpty
    }

    private static func matchOperators(
        _ ops: [String: JSONValue],
        _ actual: JSONValue?,
        path: String,
        context: inout Context,
        failures: inout [String]
    ) {
        // Presence first: `$absent` and `$any` decide on their own; other operators need a value.
        if let absent = ops["$absent"] {
            if absent == .bool(true) {
                if let actual { failures.append("\(path): expected absent, got \(brief(actual))") }
            } else if actual == nil {
                failures.append("\(path): missing")
            }
            return
        }
        let needsValue = ops.keys.contains { $0 != "$not" && $0 != "$anyOf" && $0 != "$any" }
        if actual == nil && (needsValue || ops["$any"] != nil) {
            failures.append("\(path): missing")
            return
        }
        for key in ops.keys.sorted() {
            guard let arg = ops[key] else { continue }
            switch key {
            case "$any", "$capture", "$collect":
                break  // handled below, after the checks
            case "$type":
                let names: [String] = arg.stringValue.map { [$0] } ?? (arg.arrayValue?.compactMap(\.stringValue) ?? [])
                if let actual, !names.contains(where: { hasType($0, actual) }) {
                    failures.append("\(path): expected type \(names.joined(separator: "|")), got \(brief(actual))")
                }
            case "$in", "$notIn":
                guard let options = arg.arrayValue else {
                    failures.append("\(path): \(key) needs an array")
                    continue
                }
                guard let actual else { continue }
                let found = options.contains { $0.jsonEquals(actual) }
                if key == "$in" && !found {
                    failures.append("\(path): \(brief(actual)) is not one of \(brief(arg))")
                } else if key == "$notIn" && found {
                    failures.append("\(path): \(brief(actual)) must not be one of \(brief(arg))")
                }
            case "$not":
                if matches(arg, actual, context: context) {
                    failures.append("\(path): must not match \(brief(arg)), got \(actual.map(brief) ?? "absent")")
                }
            case "$anyOf":
                guard let alternatives = arg.arrayValue, !alternatives.isEmpty else {
                    failures.append("\(path): $anyOf needs a non-empty array")
                    continue
                }
                var matched = false
                for alt in alternatives {
                    var scratch = context
                    var f: [String] = []
                    match(alt, actual, path: path, context: &scratch, failures: &f)
                    if f.isEmpty {
                        context = scratch
                        matched = true
                        break
                    }
                }
                if !matched {
                    failures.append("\(path): matches none of \(brief(arg)); got \(actual.map(brief) ?? "absent")")
                }
            case "$match":
                guard let pattern = arg.stringValue else {
                    failures.append("\(path): $match needs a string")
                    continue
                }
                guard let actual, case .string(let s) = actual else {
                    failures.append("\(path): expected a string matching /\(pattern)/, got \(actual.map(brief) ?? "absent")")
                    continue
                }
                if s.range(of: pattern, options: .regularExpression) == nil {
                    failures.append("\(path): \(brief(actual)) does not match /\(pattern)/")
                }
            case "$gte", "$gt", "$lte", "$lt":
                guard let bound = arg.numberValue else {
                    failures.append("\(path): \(key) needs a number")
                    continue
                }
                guard let n = actual?.numberValue else {
                    failures.append("\(path): expected a number, got \(actual.map(brief) ?? "absent")")
                    continue
                }
                let ok: Bool
                switch key {
                case "$gte": ok = n >= bound
                case "$gt": ok = n > bound
                case "$lte": ok = n <= bound
                default: ok = n < bound
                }
                if !ok { failures.append("\(path): expected \(key.dropFirst()) \(brief(arg)), got \(brief(actual ?? .null))") }
            default:
                matchArrayOperator(key, arg, actual, path: path, context: &context, failures: &failures)
            }
        }
        guard let actual else { return }
        if let name = ops["$capture"]?.stringValue {
            context.captures[name] = actual
        }
        if let name = ops["$collect"]?.stringValue {
            var list = context.captures[name]?.arrayValue ?? []
            list.append(actual)
            context.captures[name] = .array(list)
        }
    }

    private static func matchArrayOperator(
        _ key: String,
        _ arg: JSONValue,
        _ actual: JSONValue?,
        path: String,
        context: inout Context,
        failures: inout [String]
    ) {
        guard Matcher.keywords.contains(key) else {
            failures.append("\(path): unknown matcher \(key)")
            return
        }
        guard let actual, case .array(let items) = actual else {
            failures.append("\(path): \(key) needs an array, got \(actual.map(brief) ?? "absent")")
            return
        }
        switch key {
        case "$count", "$minItems", "$maxItems":
            guard let n = arg.intValue else {
                failures.append("\(path): \(key) needs an integer")
                return
            }
            if key == "$count" && items.count != Int(n) {
                failures.append("\(path): expected \(n) item(s), got \(items.count)")
            } else if key == "$minItems" && items.count < Int(n) {
                failures.append("\(path): expected at least \(n) item(s), got \(items.count)")
            } else if key == "$maxItems" && items.count > Int(n) {
                failures.append("\(path): expected at most \(n) item(s), got \(items.count)")
            }
        case "$each":
            for (i, item) in items.enumerated() {
                match(arg, item, path: "\(path)[\(i)]", context: &context, failures: &failures)
            }
        case "$first", "$last":
            guard let item = key == "$first" ? items.first : items.last else {
                failures.append("\(path): \(key) of an empty array")
                return
            }
            let index = key == "$first" ? 0 : items.count - 1
            match(arg, item, path: "\(path)[\(index)]", context: &context, failures: &failures)
        case "$unordered", "$contains":
            guard let wanted = arg.arrayValue else {
                failures.append("\(path): \(key) needs an array")
                return
            }
            if key == "$unordered" && wanted.count != items.count {
                failures.append("\(path): expected \(wanted.count) item(s) in any order, got \(items.count)")
                return
            }
            var assignment: [Int?] = Array(repeating: nil, count: wanted.count)
            if assign(wanted, items, 0, &assignment, context: context) {
                // Re-run the chosen pairs to keep captures.
                for (w, i) in assignment.enumerated() {
                    guard let i else { continue }
                    var f: [String] = []
                    match(wanted[w], items[i], path: "\(path)[\(i)]", context: &context, failures: &f)
                }
            } else {
                let what = key == "$unordered" ? "a permutation of" : "items matching"
                failures.append("\(path): expected \(what) \(brief(arg)), got \(brief(actual))")
            }
        case "$uniqueBy":
            guard let keyPath = arg.stringValue else {
                failures.append("\(path): $uniqueBy needs a key path string")
                return
            }
            var seen: [JSONValue: Int] = [:]
            for (i, item) in items.enumerated() {
                guard let v = lookup(item, keyPath) else { continue }
                if let j = seen[v] {
                    failures.append("\(path)[\(i)]: \(keyPath) \(brief(v)) repeats \(path)[\(j)]")
                } else {
                    seen[v] = i
                }
            }
        case "$sorted":
            let keyPath = arg["by"]?.stringValue ?? ""
            let descending = (arg["order"]?.stringValue ?? "asc") == "desc"
            let values = items.map { lookup($0, keyPath) }
            for i in values.indices.dropFirst() {
                guard let a = values[i - 1], let b = values[i], let c = compare(a, b) else {
                    failures.append("\(path)[\(i)]: cannot compare \(keyPath) values for ordering")
                    return
                }
                if descending ? c < 0 : c > 0 {
                    failures.append(
                        "\(path)[\(i)]: \(keyPath) \(brief(b)) out of \(descending ? "descending" : "ascending") order after \(brief(a))"
                    )
                }
            }
        default:
            failures.append("\(path): unknown matcher \(key)")
        }
    }

    /// Backtracking assignment of matchers to distinct items.
    private static func assign(
        _ wanted: [JSONValue],
        _ items: [JSONValue],
        _ w: Int,
        _ assignment: inout [Int?],
        context: Context
    ) -> Bool {
        if w == wanted.count { return true }
        for i in items.indices where !assignment.contains(i) {
            if matches(wanted[w], items[i], context: context) {
                assignment[w] = i
                if assign(wanted, items, w + 1, &assignment, context: context) { return true }
                assignment[w] = nil
            }
        }
        return false
    }

    /// Follows a dotted key path (`pin.cid`); the empty path is the value itself.
    static func lookup(_ value: JSONValue, _ keyPath: String) -> JSONValue? {
        if keyPath.isEmpty { return value }
        var current: JSONValue? = value
        for part in keyPath.split(separator: ".") {
            current = current?[String(part)]
        }
        return current
    }

    /// Orders numbers, RFC 3339 strings (as instants) and other strings.
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = a.numberValue, let y = b.numberValue { return x == y ? 0 : (x < y ? -1 : 1) }
        guard let s = a.stringValue, let t = b.stringValue else { return nil }
        if let x = RFC3339.parse(s), let y = RFC3339.parse(t) { return RFC3339.compare(x, y) }
        return s == t ? 0 : (s < t ? -1 : 1)
    }

    static func hasType(_ name: String, _ v: JSONValue) -> Bool {
        switch name {
        case "null": return v == .null
        case "boolean": if case .bool = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "number": return v.numberValue != nil
        case "string": return v.stringValue != nil
        case "array": return v.arrayValue != nil
        case "object": return v.objectValue != nil
        case "nonempty-string": return !(v.stringValue ?? "").isEmpty
        case "rfc3339": return v.stringValue.map(RFC3339.isValid) ?? false
        case "cid": return v.stringValue.map(isCID) ?? false
        case "requestid": return v.stringValue.map(isRequestID) ?? false
        case "multiaddr": return v.stringValue.map { $0.hasPrefix("/") && $0.count > 1 } ?? false
        case "p2p-multiaddr": return v.stringValue.map(SpecSchema.endsWithP2P) ?? false
        default: return false
        }
    }

    /// CIDv0 (`Qm` + 44 base58 chars) or a multibase CIDv1 in base32 (`b…`), base36 (`k…`),
    /// base58btc (`z…`) or base16 (`f…`).
    static func isCID(_ s: String) -> Bool {
        let patterns = [
            "^Qm[1-9A-HJ-NP-Za-km-z]{44}$",
            "^b[a-z2-7]{20,}$",
            "^B[A-Z2-7]{20,}$",
            "^k[0-9a-z]{20,}$",
            "^z[1-9A-HJ-NP-Za-km-z]{20,}$",
            "^f[0-9a-f]{20,}$",
        ]
        return patterns.contains { s.range(of: $0, options: .regularExpression) != nil }
    }

    /// An opaque id usable as one URL path segment: non-empty, no whitespace, controls or `/?#`.
    static func isRequestID(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 512 else { return false }
        return !s.unicodeScalars.contains { sc in
            sc.value < 0x21 || sc.value == 0x7F || sc == "/" || sc == "?" || sc == "#"
        }
    }

    /// A short rendering of a value for messages.
    static func brief(_ v: JSONValue) -> String {
        let s = v.serialized()
        return s.count > 200 ? String(s.prefix(200)) + "…" : s
    }
}
