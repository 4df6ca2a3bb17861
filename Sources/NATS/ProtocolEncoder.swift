import NIOCore

/// Client-to-server frames.
enum ClientFrame {
    static func pub(_ subject: String, reply: String?, headers: NATSHeaders?, payload: [UInt8], into b: inout ByteBuffer) {
        let r = reply.map { " \($0)" } ?? ""
        if let headers {
            let h = headers.encoded()
            b.writeString("HPUB \(subject)\(r) \(h.count) \(h.count + payload.count)\r\n")
            b.writeBytes(h)
        } else {
            b.writeString("PUB \(subject)\(r) \(payload.count)\r\n")
        }
        b.writeBytes(payload)
        b.writeString("\r\n")
    }

    static func sub(_ subject: String, queue: String?, sid: UInt64, into b: inout ByteBuffer) {
        b.writeString("SUB \(subject)\(queue.map { " \($0)" } ?? "") \(sid)\r\n")
    }

    static func unsub(_ sid: UInt64, into b: inout ByteBuffer) {
        b.writeString("UNSUB \(sid)\r\n")
    }

    static func ping(into b: inout ByteBuffer) { b.writeString("PING\r\n") }
    static func pong(into b: inout ByteBuffer) { b.writeString("PONG\r\n") }

    /// Subjects and queue names: non-empty, no whitespace, no empty tokens.
    static func validate(subject: String, wildcardsAllowed: Bool) throws {
        guard !subject.isEmpty,
            !subject.utf8.contains(where: { $0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 }),
            !subject.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
        else { throw NATSError.invalidSubject(subject) }
        if !wildcardsAllowed, subject.split(separator: ".").contains(where: { $0 == "*" || $0 == ">" }) {
            throw NATSError.invalidSubject(subject)
        }
    }
}
