/// A UTC instant with microsecond precision: the precision PostgreSQL stores, so a value
/// survives a round trip through the database, the API and a client's `before` unchanged.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64

    public init(microsecondsSinceEpoch: Int64) { self.microseconds = microsecondsSinceEpoch }

    public init(secondsSinceEpoch: Int64) { self.microseconds = secondsSinceEpoch * 1_000_000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    public func adding(microseconds delta: Int64) -> Timestamp {
        Timestamp(microsecondsSinceEpoch: microseconds &+ delta)
    }

    public func adding(seconds delta: Int64) -> Timestamp { adding(microseconds: delta * 1_000_000) }

    /// Whole seconds since the epoch, rounded down (JWT `exp`/`iat` are in seconds).
    public var secondsSinceEpoch: Int64 {
        microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
    }

    public var description: String { rfc3339 }

    /// RFC 3339 in UTC with exactly six fraction digits: `2026-11-25T13:01:02.123456Z`.
    public var rfc3339: String {
        let secs = secondsSinceEpoch
        let micros = Int(microseconds - secs * 1_000_000)
        var days = secs / 86_400
        var rem = secs % 86_400
        if rem < 0 {
            rem += 86_400
            days -= 1
        }
        let (y, m, d) = Self.civil(fromDays: days)
        var out = ""
        out.reserveCapacity(27)
        Self.pad(&out, Int(y), 4)
        out.append("-")
        Self.pad(&out, m, 2)
        out.append("-")
        Self.pad(&out, d, 2)
        out.append("T")
        Self.pad(&out, Int(rem / 3600), 2)
        out.append(":")
        Self.pad(&out, Int(rem % 3600 / 60), 2)
        out.append(":")
        Self.pad(&out, Int(rem % 60), 2)
        out.append(".")
        Self.pad(&out, micros, 6)
        out.append("Z")
        return out
    }

    private static func pad(_ out: inout String, _ value: Int, _ width: Int) {
        let digits = String(value)
        if digits.count < width { out.append(String(repeating: "0", count: width - digits.count)) }
        out.append(digits)
    }

    // Howard Hinnant's civil-from-days / days-from-civil (proleptic Gregorian).
    static func civil(fromDays z0: Int64) -> (Int64, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, Int(m), Int(d))
    }

    static func days(fromCivil y0: Int64, _ m: Int, _ d: Int) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mm = Int64(m)
        let doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// An RFC 3339 `date-time` as a client sent it, kept exact below a microsecond so that strict
/// comparisons against microsecond `created` values are exact: `created < before` holds iff
/// `created < before.ceiling`, and `created > after` iff `created > after.floor`.
public struct ParsedDateTime: Sendable, Equatable {
    /// The instant rounded down to a microsecond.
    public var floor: Timestamp
    /// Whether digits below a microsecond were non-zero.
    public var hasSubMicrosecondPart: Bool

    /// The instant rounded up to a microsecond.
    public var ceiling: Timestamp {
        hasSubMicrosecondPart ? floor.adding(microseconds: 1) : floor
    }

    /// Parses any RFC 3339 §5.6 `date-time`: `T`/`t` (or a space), 0–9+ fraction digits,
    /// `Z`/`z` or a `±HH:MM` offset. Returns nil for anything else (including invalid dates).
    public init?(rfc3339 text: some StringProtocol) {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")),
            let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2)
        else { return nil }
        guard i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ")
        else { return nil }
        i += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")),
            let minute = digits(2), expect(UInt8(ascii: ":")),
            let second = digits(2)
        else { return nil }
        var micros = 0
        var below = false
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if n < 6 { micros = micros * 10 + Int(b[i] - 48) } else if b[i] != 48 { below = true }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
            for _ in min(n, 6)..<6 { micros *= 10 }
        }
        var offsetSeconds = 0
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(UInt8(ascii: ":")), let om = digits(2), oh <= 23, om <= 59 else {
                return nil
            }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        default:
            return nil
        }
        guard i == b.count else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        // A leap second (":60") is read as the last microsecond-aligned instant before the next
        // minute would be wrong; RFC 3339 allows it, we fold it into the following second.
        let days = Timestamp.days(fromCivil: Int64(year), month, day)
        let secs = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        self.floor = Timestamp(microsecondsSinceEpoch: secs * 1_000_000 + Int64(micros))
        self.hasSubMicrosecondPart = below
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
