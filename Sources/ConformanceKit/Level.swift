import Foundation

/// How binding a case is. Only `required` failures fail a run (and `recommended` ones under
/// `--strict`); `anchorage` cases report this project's own choices and never decide the exit status.
public enum ConformanceLevel: String, Codable, Sendable, CaseIterable, Comparable {
    /// The spec says so, or its documented responses make any other answer wrong.
    case required
    /// SHOULD, HTTP hygiene, or what Kubo's client and the compliance suite rely on where the spec is open.
    case recommended
    /// anchorage's own choices (e.g. millisecond `created`, a body size limit).
    case anchorage

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The words a case checks: a line range of the spec (`ipfs-pinning-service.yaml#L593` or
/// `#L592-L600`, numbered as in the upstream file) or an RFC section (`RFC 9110 §11.6.1`), with
/// the quoted text, and for a case that is not `required`, why not.
public struct Clause: Codable, Sendable, Hashable {
    public var ref: String
    public var quote: String
    public var note: String?

    public init(ref: String, quote: String, note: String? = nil) {
        self.ref = ref
        self.quote = quote
        self.note = note
    }

    /// The spec file a `ref` may point into.
    public static let specFile = "ipfs-pinning-service.yaml"

    /// The 1-based line range of a spec reference, or nil for an RFC reference or a malformed one.
    public var specLines: ClosedRange<Int>? {
        let prefix = Clause.specFile + "#L"
        guard ref.hasPrefix(prefix) else { return nil }
        let parts = ref.dropFirst(prefix.count).split(separator: "-", maxSplits: 1).map(String.init)
        guard let first = Int(parts[0]), first > 0 else { return nil }
        if parts.count == 1 { return first...first }
        guard parts[1].hasPrefix("L"), let last = Int(parts[1].dropFirst()), last >= first else { return nil }
        return first...last
    }

    /// Whether `ref` is an RFC section, `RFC <number> §<section>`.
    public var isRFC: Bool {
        ref.range(of: "^RFC [0-9]+ §[0-9]+(\\.[0-9]+)*$", options: .regularExpression) != nil
    }
}
