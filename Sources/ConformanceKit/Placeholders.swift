import Foundation

// MARK: - Random numbers

/// SplitMix64: small, fast, seedable. Used so a seeded run (e.g. in the simulator) produces the
/// same CIDs and names every time.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<8 where out.count < count {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }
}

// MARK: - Generators

/// Makes fresh, well-formed identifiers.
enum Generators {
    private static let base32Alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    private static let base58Alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    /// RFC 4648 base32, lowercase, no padding.
    static func base32(_ data: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in data {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(base32Alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 {
            out.append(base32Alphabet[Int((buffer << UInt32(5 - bits)) & 31)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Bitcoin base58.
    static func base58(_ data: [UInt8]) -> String {
        var digits: [Int] = [0]
        for byte in data {
            var carry = Int(byte)
            for i in 0..<digits.count {
                carry += digits[i] << 8
                digits[i] = carry % 58
                carry /= 58
            }
            while carry > 0 {
                digits.append(carry % 58)
                carry /= 58
            }
        }
        var out: [UInt8] = []
        for byte in data {
            if byte == 0 { out.append(base58Alphabet[0]) } else { break }
        }
        let trimmed = digits.reversed().drop(while: { $0 == 0 })
        for d in trimmed { out.append(base58Alphabet[d]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// CIDv1, raw codec (0x55), sha2-256 multihash of random bytes, multibase base32: `bafkrei…`.
    static func cidV1(_ rng: inout SplitMix64) -> String {
        "b" + base32([0x01, 0x55, 0x12, 0x20] + rng.bytes(32))
    }

    /// CIDv0: base58btc sha2-256 multihash: `Qm…`.
    static func cidV0(_ rng: inout SplitMix64) -> String {
        base58([0x12, 0x20] + rng.bytes(32))
    }

    /// Lowercase UUIDv4.
    static func uuid(_ rng: inout SplitMix64) -> String {
        var b = rng.bytes(16)
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = b.map { byte -> String in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        let parts = [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]]
        return parts.map { $0.joined() }.joined(separator: "-")
    }

    /// Lowercase hex of `count` random bytes.
    static func hex(_ rng: inout SplitMix64, count: Int) -> String {
        rng.bytes(count).map { byte -> String in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}

// MARK: - Percent-encoding

enum PercentEncoding {
    private static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "%" + String(digits[Int(b >> 4)]) + String(digits[Int(b & 15)])
    }

    /// Go `url.QueryEscape`: space becomes `+`.
    static func goQuery(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if isUnreserved(b) {
                out.append(Character(Unicode.Scalar(b)))
            } else if b == UInt8(ascii: " ") {
                out += "+"
            } else {
                out += hex(b)
            }
        }
        return out
    }

    /// JavaScript `encodeURIComponent`.
    static func jsComponent(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if isUnreserved(b) || "!'()*".utf8.contains(b) {
                out.append(Character(Unicode.Scalar(b)))
            } else {
                out += hex(b)
            }
        }
        return out
    }

    /// Escapes a value for one path segment (Go `url.PathEscape`-like).
    static func pathSegment(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if isUnreserved(b) || "!$&'()*+,;=:@".utf8.contains(b) {
                out.append(Character(Unicode.Scalar(b)))
            } else {
                out += hex(b)
            }
        }
        return out
    }

    static func query(_ s: String, _ encoding: QueryEncoding) -> String {
        encoding == .go ? goQuery(s) : jsComponent(s)
    }

    /// Percent-decodes (no `+` handling); returns the input when it is not valid UTF-8 afterwards.
    static func decode(_ s: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(s.utf8)[...]
        while let b = utf8.first {
            utf8 = utf8.dropFirst()
            if b == UInt8(ascii: "%"), utf8.count >= 2,
                let v = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? s
    }
}

// MARK: - RFC 3339 timestamps

/// An RFC 3339 date-time split into parts, keeping the fraction digits exactly as written.
struct RFC3339: Sendable {
    var epochSeconds: Int64  // UTC seconds of the whole-second part
    var fraction: String  // digits after '.', possibly empty
    var offsetMinutes: Int  // the zone as written

    static let pattern =
        "^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])[Tt]([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d+)?([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$"

    /// Whether `s` has the shape the compliance suite's date-time regex accepts.
    static func isValid(_ s: String) -> Bool { parse(s) != nil }

    static func parse(_ s: String) -> RFC3339? {
        guard s.range(of: pattern, options: .regularExpression) != nil else { return nil }
        let chars = Array(s.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            Int(String(decoding: chars[from..<(from + len)], as: UTF8.self))
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let sec = num(17, 2)
        else { return nil }
        var i = 19
        var fraction = ""
        if i < chars.count, chars[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < chars.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(chars[i]) { i += 1 }
            fraction = String(decoding: chars[start..<i], as: UTF8.self)
        }
        var offset = 0
        if i < chars.count, chars[i] == UInt8(ascii: "+") || chars[i] == UInt8(ascii: "-") {
            guard let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
            offset = (oh * 60 + om) * (chars[i] == UInt8(ascii: "-") ? -1 : 1)
        }
        // Reject impossible days (Feb 30th and the like).
        if d > daysInMonth(year: y, month: mo) { return nil }
        let days = daysFromCivil(y, mo, d)
        let local = days * 86400 + Int64(h * 3600 + mi * 60 + min(sec, 59))
        return RFC3339(epochSeconds: local - Int64(offset * 60), fraction: fraction, offsetMinutes: offset)
    }

    /// Fraction as nanoseconds (digits beyond 9 are truncated).
    var nanoseconds: Int64 {
        let digits = String(fraction.prefix(9))
        let padded = digits + String(repeating: "0", count: 9 - digits.count)
        return Int64(padded) ?? 0
    }

    /// Orders two instants (seconds, then fraction).
    static func compare(_ a: RFC3339, _ b: RFC3339) -> Int {
        if a.epochSeconds != b.epochSeconds { return a.epochSeconds < b.epochSeconds ? -1 : 1 }
        let fa = a.fraction.padding(toLength: max(a.fraction.count, b.fraction.count), withPad: "0", startingAt: 0)
        let fb = b.fraction.padding(toLength: max(a.fraction.count, b.fraction.count), withPad: "0", startingAt: 0)
        if fa == fb { return 0 }
        return fa < fb ? -1 : 1
    }

    /// Renders in the given zone offset, keeping `fractionDigits` (or the original digits when nil).
    func format(offsetMinutes: Int, fraction overrideFraction: String? = nil) -> String {
        let local = epochSeconds + Int64(offsetMinutes * 60)
        let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let secondsOfDay = Int(local - days * 86400)
        let (y, m, d) = RFC3339.civilFromDays(days)
        func pad(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        var out = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T"
        out += "\(pad(secondsOfDay / 3600, 2)):\(pad(secondsOfDay % 3600 / 60, 2)):\(pad(secondsOfDay % 60, 2))"
        let frac = overrideFraction ?? fraction
        if !frac.isEmpty { out += "." + frac }
        if offsetMinutes == 0 {
            out += "Z"
        } else {
            let sign = offsetMinutes < 0 ? "-" : "+"
            let a = abs(offsetMinutes)
            out += "\(sign)\(pad(a / 60, 2)):\(pad(a % 60, 2))"
        }
        return out
    }

    /// From a Foundation date (UTC, millisecond precision).
    static func from(date: Date) -> RFC3339 {
        let t = date.timeIntervalSince1970
        let seconds = Int64(t.rounded(.down))
        let millis = Int(((t - Double(seconds)) * 1000).rounded(.down))
        let ms = String(millis)
        return RFC3339(
            epochSeconds: seconds,
            fraction: String(repeating: "0", count: 3 - min(3, ms.count)) + ms,
            offsetMinutes: 0
        )
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ days: Int64) -> (Int, Int, Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }
}

// MARK: - Placeholder resolution

/// Why a placeholder could not be resolved.
struct PlaceholderError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Where a resolved value is going, which decides how it is escaped.
enum SubstitutionContext {
    case plain
    case path
    case query(QueryEncoding)
}

/// Resolves `{{…}}` placeholders for one case: generated values are memoised per case, captures
/// come from earlier steps.
struct PlaceholderResolver {
    /// Heads that generate values instead of reading captures.
    static let generatorKinds: Set<String> = ["cid", "cidv0", "name", "uuid", "filler"]
    static let transforms: Set<String> = ["upper", "lower", "slice", "rfc3339nano", "iso-ms", "offset", "json"]
    static let maxFiller = 16 * 1024 * 1024

    var rng: SplitMix64
    var runID: String
    var namePrefix: String
    var now: Date
    var generated: [String: String] = [:]
    var captures: [String: JSONValue] = [:]
    var iteration: Int?

    /// Replaces `{{i}}` textually (so `{{cid:p{{i}}}}` becomes `{{cid:p3}}`).
    func expandIteration(_ s: String) throws -> String {
        guard s.contains("{{i}}") else { return s }
        guard let iteration else { throw PlaceholderError(message: "{{i}} used outside a repeated step") }
        return s.replacingOccurrences(of: "{{i}}", with: String(iteration))
    }

    /// Resolves every placeholder in `s`, escaping substituted values for `context`.
    mutating func resolve(_ s: String, context: SubstitutionContext = .plain) throws -> String {
        let text = try expandIteration(s)
        guard text.contains("{{") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else {
                throw PlaceholderError(message: "unterminated placeholder in \"\(s)\"")
            }
            let expr = String(after[..<close.lowerBound])
            let value = try evaluate(expr)
            let text: String
            switch value {
            case .string(let str): text = str
            default: text = value.serialized()
            }
            switch context {
            case .plain: out += text
            case .path: out += PercentEncoding.pathSegment(text)
            case .query(let enc): out += PercentEncoding.query(text, enc)
            }
            rest = after[close.upperBound...]
        }
        out += rest
        return out
    }

    /// Resolves placeholders inside a JSON value. A string that is exactly one placeholder takes
    /// the captured value's JSON type (so `"count": "{{before}}"` compares as an integer).
    mutating func resolve(value: JSONValue) throws -> JSONValue {
        switch value {
        case .string(let s):
            let text = try expandIteration(s)
            if text.hasPrefix("{{"), text.hasSuffix("}}"), text.count > 4 {
                let inner = String(text.dropFirst(2).dropLast(2))
                if !inner.contains("{{"), !inner.contains("}}") {
                    return try evaluate(inner)
                }
            }
            return .string(try resolve(text))
        case .array(let a):
            return .array(try a.map { try resolve(value: $0) })
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                out[try resolve(k)] = try resolve(value: v)
            }
            return .object(out)
        default:
            return value
        }
    }

    /// Evaluates one placeholder expression (`head|transform|transform`).
    mutating func evaluate(_ expr: String) throws -> JSONValue {
        let parts = expr.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard let head = parts.first, !head.isEmpty else { throw PlaceholderError(message: "empty placeholder") }
        var value = try evaluateHead(head)
        for t in parts.dropFirst() {
            value = try apply(transform: t, to: value)
        }
        return value
    }

    private mutating func evaluateHead(_ head: String) throws -> JSONValue {
        if head == "run" { return .string(runID) }
        if head == "i" {
            guard let iteration else { throw PlaceholderError(message: "{{i}} used outside a repeated step") }
            return .int(Int64(iteration))
        }
        if head == "now" || head.hasPrefix("now+") || head.hasPrefix("now-") {
            var date = now
            if head != "now" {
                let sign: Double = head.dropFirst(3).first == "-" ? -1 : 1
                guard let d = DurationText.parse(String(head.dropFirst(4))) else {
                    throw PlaceholderError(message: "bad duration in {{\(head)}}")
                }
                date = date.addingTimeInterval(sign * d.secondsDouble)
            }
            return .string(RFC3339.from(date: date).format(offsetMinutes: 0))
        }
        if let colon = head.firstIndex(of: ":") {
            let kind = String(head[..<colon])
            let key = String(head[head.index(after: colon)...])
            if PlaceholderResolver.generatorKinds.contains(kind) {
                guard !key.isEmpty else { throw PlaceholderError(message: "{{\(head)}} needs a key") }
                if kind == "filler" {
                    guard let n = Int(key), n >= 0, n <= PlaceholderResolver.maxFiller else {
                        throw PlaceholderError(message: "{{filler:N}} needs 0 ≤ N ≤ \(PlaceholderResolver.maxFiller)")
                    }
                    return .string(String(repeating: "a", count: n))
                }
                if let existing = generated[head] { return .string(existing) }
                let fresh: String
                switch kind {
                case "cid": fresh = Generators.cidV1(&rng)
                case "cidv0": fresh = Generators.cidV0(&rng)
                case "uuid": fresh = Generators.uuid(&rng)
                default:
                    let safeKey = key.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" }
                    fresh = "\(namePrefix)-\(runID)-\(safeKey)-\(Generators.hex(&rng, count: 3))"
                }
                generated[head] = fresh
                return .string(fresh)
            }
        }
        guard let captured = captures[head] else {
            throw PlaceholderError(message: "undefined placeholder {{\(head)}}")
        }
        return captured
    }

    private func apply(transform: String, to value: JSONValue) throws -> JSONValue {
        let parts = transform.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let name = parts.first ?? ""
        if name == "json" { return .string(value.serialized()) }
        guard case .string(let s) = value else {
            throw PlaceholderError(message: "transform |\(name) needs a string value")
        }
        switch name {
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "slice":
            guard parts.count == 3, let from = Int(parts[1]), let to = Int(parts[2]), from >= 0, to >= from else {
                throw PlaceholderError(message: "|slice needs :from:to")
            }
            let chars = Array(s)
            let lo = min(from, chars.count)
            let hi = min(to, chars.count)
            return .string(String(chars[lo..<hi]))
        case "rfc3339nano":
            // Go's time.RFC3339Nano: trailing zeros of the fraction trimmed, no '.' when zero.
            guard let t = RFC3339.parse(s) else { throw PlaceholderError(message: "|rfc3339nano: not a date-time: \(s)") }
            var frac = String(t.fraction.prefix(9))
            while frac.hasSuffix("0") { frac.removeLast() }
            return .string(t.format(offsetMinutes: t.offsetMinutes, fraction: frac))
        case "iso-ms":
            // JavaScript Date.toISOString(): UTC, exactly 3 digits (truncated).
            guard let t = RFC3339.parse(s) else { throw PlaceholderError(message: "|iso-ms: not a date-time: \(s)") }
            let ms = String(t.fraction.prefix(3)).padding(toLength: 3, withPad: "0", startingAt: 0)
            return .string(t.format(offsetMinutes: 0, fraction: ms))
        case "offset":
            // offset:+02:00 → the same instant written with that zone.
            let spec = parts.dropFirst().joined(separator: ":")
            guard let t = RFC3339.parse(s) else { throw PlaceholderError(message: "|offset: not a date-time: \(s)") }
            guard spec.count == 6, let first = spec.first, first == "+" || first == "-",
                let h = Int(spec.dropFirst().prefix(2)), let m = Int(spec.suffix(2))
            else { throw PlaceholderError(message: "|offset needs :+HH:MM") }
            let minutes = (h * 60 + m) * (first == "-" ? -1 : 1)
            return .string(t.format(offsetMinutes: minutes))
        default:
            throw PlaceholderError(message: "unknown transform |\(name)")
        }
    }
}
