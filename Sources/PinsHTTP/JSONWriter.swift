import NIOCore
import Pins
import Seams

/// A minimal JSON writer for the wire types. Writing by hand keeps the output strict by
/// construction: only the spec's keys, optional fields omitted rather than `null`, no empty
/// strings we invent, and `created` in one fixed RFC 3339 form.
struct JSONWriter {
    var buffer: ByteBuffer

    init(allocator: ByteBufferAllocator = ByteBufferAllocator(), capacity: Int = 512) {
        buffer = allocator.buffer(capacity: capacity)
    }

    mutating func raw(_ s: StaticString) {
        buffer.writeStaticString(s)
    }

    mutating func string(_ s: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var run = s.utf8.startIndex
        let utf8 = s.utf8
        var i = run
        while i != utf8.endIndex {
            let c = utf8[i]
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                buffer.writeString(String(utf8[run..<i])!)
                switch c {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex[Int(c >> 4)])
                    buffer.writeInteger(hex[Int(c & 0xF)])
                }
                run = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        buffer.writeString(String(utf8[run..<utf8.endIndex])!)
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    mutating func int(_ n: Int) { buffer.writeString(String(n)) }

    mutating func stringArray(_ items: [String]) {
        raw("[")
        for (n, item) in items.enumerated() {
            if n > 0 { raw(",") }
            string(item)
        }
        raw("]")
    }

    /// A string map with keys sorted, so equal maps serialise identically.
    mutating func stringMap(_ map: [String: String]) {
        raw("{")
        for (n, key) in map.keys.sorted().enumerated() {
            if n > 0 { raw(",") }
            string(key)
            raw(":")
            string(map[key]!)
        }
        raw("}")
    }

    /// The spec's `PinStatus`.
    mutating func pinStatus(_ record: PinRecord, delegates: [String]) {
        raw("{\"requestid\":")
        string(record.id.description)
        raw(",\"status\":")
        string(record.status.rawValue)
        raw(",\"created\":")
        string(record.created.rfc3339)
        raw(",\"pin\":{\"cid\":")
        string(record.request.cid)
        if let name = record.request.name, !name.isEmpty {
            raw(",\"name\":")
            string(name)
        }
        if !record.request.origins.isEmpty {
            raw(",\"origins\":")
            stringArray(Array(record.request.origins.prefix(Wire.maxEchoedOrigins)))
        }
        if !record.request.meta.isEmpty {
            raw(",\"meta\":")
            stringMap(record.request.meta)
        }
        raw("},\"delegates\":")
        stringArray(delegates)
        if !record.info.isEmpty {
            raw(",\"info\":")
            stringMap(record.info)
        }
        raw("}")
    }

    /// The spec's `Failure`.
    mutating func failure(_ error: PinsError) {
        raw("{\"error\":{\"reason\":")
        string(error.reason.isEmpty ? "ERROR" : error.reason)
        if let details = error.details, !details.isEmpty {
            raw(",\"details\":")
            string(details)
        }
        raw("}}")
    }
}

enum Wire {
    /// The spec caps `Pin.origins` at 20; we keep more, but never echo more.
    static let maxEchoedOrigins = 20
    /// The spec caps `delegates` at 20 and requires at least one.
    static let maxDelegates = 20
}
