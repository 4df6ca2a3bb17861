/// Durations as operators write them: `90s`, `2m`, `1h30m`, `30d`, `500ms`.
public enum DurationText {
    /// Parses into microseconds; nil for anything malformed, empty, zero-unit or overflowing.
    public static func microseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [
            ("ms", 1000), ("s", 1_000_000), ("m", 60_000_000), ("h", 3_600_000_000), ("d", 86_400_000_000),
            ("w", 604_800_000_000),
        ]
        var rest = Substring(text.trimmingSpaces)
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, let n = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            let (product, o1) = n.multipliedReportingOverflow(by: scale)
            let (sum, o2) = total.addingReportingOverflow(product)
            guard !o1, !o2 else { return nil }
            total = sum
        }
        return total
    }

    public static func seconds(_ text: String) -> Int64? {
        microseconds(text).map { $0 / 1_000_000 }
    }

    /// Whole seconds as configuration and command-line flags take them: a duration (`90s`,
    /// `1h30m`) or a bare number of seconds (`90`). Nil when malformed; a leading `-` is
    /// malformed too (callers say "must be > 0" for it, see ``isNegative(_:)``).
    public static func operatorSeconds(_ text: String) -> Int64? {
        let t = text.trimmingSpaces
        if let plain = Int64(t), plain >= 0 { return plain }
        return seconds(t)
    }

    /// `-5m`, `-30`: a negative duration, told apart from a malformed one for a clearer error.
    public static func isNegative(_ text: String) -> Bool {
        let t = text.trimmingSpaces
        return t.hasPrefix("-") && operatorSeconds(String(t.dropFirst())) != nil
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
