import NIOCore

/// One operation sent by the server.
public enum ServerOp: Sendable, Equatable {
    case info(ServerInfo)
    case msg(NATSMessage)
    case ping
    case pong
    case ok
    case err(String)
}

/// Incremental decoder of the server-to-client protocol. Feed it a cumulation buffer; it consumes
/// complete operations only, so frames split across reads (even mid control line or mid payload)
/// are left in place until the rest arrives.
public struct NATSProtocolParser: Sendable {
    /// A control line longer than this without CRLF is a protocol violation (guards memory).
    public var maxControlLine: Int
    /// A MSG/HMSG announcing more than this many bytes is a protocol violation.
    public var maxPayload: Int

    public init(maxControlLine: Int = 1 << 20, maxPayload: Int = 64 << 20) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    /// The next complete operation, or nil when `buffer` holds only part of one.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> ServerOp? {
        guard let lineLength = Self.crlfOffset(buffer) else {
            if buffer.readableBytes > maxControlLine {
                throw NATSError.protocolViolation("control line longer than \(maxControlLine) bytes")
            }
            return nil
        }
        let start = buffer.readerIndex
        let line = buffer.getString(at: start, length: lineLength) ?? ""
        let afterLine = lineLength + 2
        let (op, rest) = Self.splitOp(line)
        switch op {
        case "MSG", "HMSG":
            let args = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let header = op == "HMSG"
            let m = try Self.msgArgs(args, header: header)
            guard m.total <= maxPayload, m.headerBytes <= m.total else {
                throw NATSError.protocolViolation("\(op) announces \(m.total) bytes")
            }
            guard buffer.readableBytes >= afterLine + m.total + 2 else { return nil }
            let body = buffer.getBytes(at: start + afterLine, length: m.total) ?? []
            guard buffer.getBytes(at: start + afterLine + m.total, length: 2) == [13, 10] else {
                throw NATSError.protocolViolation("\(op) payload not followed by CRLF")
            }
            buffer.moveReaderIndex(forwardBy: afterLine + m.total + 2)
            var headers: NATSHeaders?
            if header { headers = try NATSHeaders.parse(body[0..<m.headerBytes]) }
            return .msg(
                NATSMessage(
                    subject: m.subject,
                    replyTo: m.reply,
                    headers: headers,
                    payload: Array(body[m.headerBytes...]),
                    sid: m.sid
                )
            )
        case "PING":
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .ping
        case "PONG":
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .pong
        case "+OK":
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .ok
        case "-ERR":
            buffer.moveReaderIndex(forwardBy: afterLine)
            var text = rest.trimmingSpaces()
            if text.hasPrefix("'"), text.hasSuffix("'"), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
            return .err(text)
        case "INFO":
            buffer.moveReaderIndex(forwardBy: afterLine)
            do {
                return .info(try ServerInfo.parse(Array(rest.utf8)))
            } catch {
                throw NATSError.protocolViolation("unparsable INFO: \(error)")
            }
        default:
            throw NATSError.protocolViolation("unknown operation \"\(line.prefix(40))\"")
        }
    }

    static func crlfOffset(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            guard raw.count >= 2 else { return nil }
            var i = 0
            while i < raw.count - 1 {
                if raw[i] == 13, raw[i + 1] == 10 { return i }
                i += 1
            }
            return nil
        }
    }

    static func splitOp(_ line: String) -> (String, String) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        let op = trimmed.prefix { $0 != " " && $0 != "\t" }
        let rest = trimmed.dropFirst(op.count).drop { $0 == " " || $0 == "\t" }
        return (op.uppercased(), String(rest))
    }

    struct MsgArgs {
        var subject: String
        var sid: UInt64
        var reply: String?
        var headerBytes: Int
        var total: Int
    }

    /// MSG <subject> <sid> [reply] <#bytes>; HMSG <subject> <sid> [reply] <#hdr> <#total>.
    static func msgArgs(_ a: [String], header: Bool) throws -> MsgArgs {
        let sizes = header ? 2 : 1
        guard a.count == 2 + sizes || a.count == 3 + sizes, let sid = UInt64(a[1]) else {
            throw NATSError.protocolViolation("bad \(header ? "HMSG" : "MSG") arguments \(a)")
        }
        let reply = a.count == 3 + sizes ? a[2] : nil
        guard let total = Int(a[a.count - 1]), total >= 0 else {
            throw NATSError.protocolViolation("bad size in \(a)")
        }
        var hdr = 0
        if header {
            guard let h = Int(a[a.count - 2]), h >= 0 else { throw NATSError.protocolViolation("bad header size in \(a)") }
            hdr = h
        }
        return MsgArgs(subject: a[0], sid: sid, reply: reply, headerBytes: hdr, total: total)
    }
}
