/// A NATS header block (`NATS/1.0[ status[ description]]` then `Name: value` lines). Names keep
/// their case and order; lookups ignore case. Repeated names are allowed, as in NATS.
public struct NATSHeaders: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []
    /// Status code of the first line (e.g. 503 no responders, 404/408 from pull requests).
    public var status: Int?
    public var statusDescription: String?

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (n, v) in elements { append(n, v) }
    }

    public var isEmpty: Bool { fields.isEmpty && status == nil }

    public subscript(name: String) -> String? {
        get { fields.first { $0.name.caseInsensitiveEquals(name) }?.value }
        set {
            fields.removeAll { $0.name.caseInsensitiveEquals(name) }
            if let newValue { fields.append((name, newValue)) }
        }
    }

    public mutating func append(_ name: String, _ value: String) { fields.append((name, value)) }

    public static func == (a: NATSHeaders, b: NATSHeaders) -> Bool {
        a.status == b.status && a.statusDescription == b.statusDescription
            && a.fields.elementsEqual(b.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The wire form, ending with the blank line.
    func encoded() -> [UInt8] {
        var s = "NATS/1.0"
        if let status { s += " \(status)" + (statusDescription.map { " \($0)" } ?? "") }
        s += "\r\n"
        for f in fields { s += "\(f.name): \(f.value)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// Parses a header block as it arrives in `HMSG`.
    static func parse(_ bytes: some Collection<UInt8>) throws -> NATSHeaders {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)[...]
        guard let first = lines.popFirst(), first.hasPrefix("NATS/1.0") else {
            throw NATSError.protocolViolation("header block without NATS/1.0")
        }
        var h = NATSHeaders()
        let rest = first.dropFirst("NATS/1.0".count).drop { $0 == " " }
        if !rest.isEmpty {
            let code = rest.prefix { $0.isNumber }
            h.status = Int(code)
            let desc = rest.dropFirst(code.count).drop { $0 == " " }
            if !desc.isEmpty { h.statusDescription = String(desc) }
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingSpaces()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            h.append(name, value)
        }
        return h
    }
}

extension StringProtocol {
    func caseInsensitiveEquals(_ other: some StringProtocol) -> Bool {
        self.count == other.count && self.lowercased() == other.lowercased()
    }

    func trimmingSpaces() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
