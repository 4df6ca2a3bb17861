import NIOCore

/// Splits a byte stream into newline-terminated lines (NDJSON), whatever the chunking: an object
/// may span several chunks and a chunk may hold several objects. Blank lines are skipped; a final
/// line without `\n` is still delivered at the end.
public struct NDJSONLineSplitter: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// Feeds one chunk; returns the complete lines it finished.
    public mutating func feed(_ chunk: ByteBuffer) -> [[UInt8]] {
        feed(chunk.readableBytesView)
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let line = take() { lines.append(line) }
            } else {
                pending.append(byte)
            }
        }
        return lines
    }

    /// The last, unterminated line, if any.
    public mutating func finish() -> [UInt8]? { take() }

    private mutating func take() -> [UInt8]? {
        defer { pending.removeAll(keepingCapacity: true) }
        var line = pending[...]
        while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            line = line.dropLast()
        }
        while let first = line.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { line = line.dropFirst() }
        return line.isEmpty ? nil : Array(line)
    }
}
