import NATS
import NIOCore
import Testing

@Suite struct ProtocolParserTests {
    func parseAll(_ chunks: [String]) throws -> [ServerOp] {
        var parser = NATSProtocolParser()
        var buffer = ByteBuffer()
        var ops: [ServerOp] = []
        for chunk in chunks {
            buffer.writeString(chunk)
            while let op = try parser.next(&buffer) { ops.append(op) }
        }
        #expect(buffer.readableBytes == 0)
        return ops
    }

    @Test func controlOperations() throws {
        let ops = try parseAll(["PING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n"])
        #expect(ops == [.ping, .pong, .ok, .err("Authorization Violation")])
    }

    @Test func lowercaseOperationsAreAccepted() throws {
        #expect(try parseAll(["ping\r\n"]) == [.ping])
    }

    @Test func infoIsDecoded() throws {
        let ops = try parseAll([#"INFO {"server_id":"X","version":"2.15.1","max_payload":1048576,"headers":true,"jetstream":true}"# + "\r\n"])
        guard case .info(let info) = ops.first else {
            Issue.record("no INFO")
            return
        }
        #expect(info.version == "2.15.1")
        #expect(info.maxPayload == 1_048_576)
        #expect(info.headers && info.jetStream)
        #expect(info.serverVersion == ServerVersion(2, 15, 1))
    }

    @Test func msgWithAndWithoutReply() throws {
        let ops = try parseAll(["MSG a.b 7 5\r\nhello\r\nMSG a.c 8 _INBOX.x 0\r\n\r\n"])
        #expect(
            ops == [
                .msg(NATSMessage(subject: "a.b", payload: "hello".bytes, sid: 7)),
                .msg(NATSMessage(subject: "a.c", replyTo: "_INBOX.x", payload: [], sid: 8)),
            ]
        )
    }

    @Test func payloadMayContainCRLF() throws {
        let ops = try parseAll(["MSG s 1 4\r\n\r\n\r\n\r\n"])
        #expect(ops == [.msg(NATSMessage(subject: "s", payload: [13, 10, 13, 10], sid: 1))])
    }

    @Test func framesSplitAtEveryByte() throws {
        let block = "NATS/1.0\r\nK: v\r\nX: y\r\n\r\n"
        let n = block.utf8.count
        let wire = "MSG a 1 r 3\r\nabc\r\nHMSG b 2 \(n) \(n + 2)\r\n\(block)hi\r\nPING\r\n"
        let ops = try parseAll(wire.map { String($0) })
        #expect(ops.count == 3)
        guard case .msg(let h) = ops[1] else {
            Issue.record("no HMSG")
            return
        }
        #expect(h.headers?["K"] == "v" && h.headers?["x"] == "y")
        #expect(h.payload == "hi".bytes)
        #expect(ops[2] == .ping)
    }

    @Test func hmsgStatusHeaders() throws {
        let block = "NATS/1.0 503\r\n\r\n"
        let ops = try parseAll(["HMSG _INBOX.a.b 3 \(block.utf8.count) \(block.utf8.count)\r\n\(block)\r\n"])
        guard case .msg(let m) = ops.first else {
            Issue.record("no HMSG")
            return
        }
        #expect(m.status == 503)
        #expect(m.payload.isEmpty)

        let timeout = "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"
        let ops2 = try parseAll(["HMSG i 3 \(timeout.utf8.count) \(timeout.utf8.count)\r\n\(timeout)\r\n"])
        guard case .msg(let t) = ops2.first else {
            Issue.record("no HMSG")
            return
        }
        #expect(t.status == 408)
        #expect(t.headers?.statusDescription == "Request Timeout")
        #expect(t.headers?["Nats-Pending-Messages"] == "1")
    }

    @Test func incompleteFrameWaits() throws {
        var parser = NATSProtocolParser()
        var buffer = ByteBuffer(string: "MSG a 1 10\r\nabc")
        #expect(try parser.next(&buffer) == nil)
        #expect(buffer.readableBytes == 15)
    }

    @Test func garbageIsAProtocolViolation() {
        var parser = NATSProtocolParser()
        var buffer = ByteBuffer(string: "BOGUS 1 2\r\n")
        #expect(throws: NATSError.self) { try parser.next(&buffer) }
        var overlong = ByteBuffer(string: "MSG a 1 3\r\nabcXY")
        #expect(throws: NATSError.self) { try parser.next(&overlong) }
    }

    @Test func ackSubjectMetadata() {
        let v1 = AckMetadata(ackSubject: "$JS.ACK.PIN_JOBS.jobs_n1.2.17.5.1700000000000000000.3")
        #expect(v1?.stream == "PIN_JOBS")
        #expect(v1?.consumer == "jobs_n1")
        #expect(v1?.numDelivered == 2)
        #expect(v1?.streamSequence == 17)
        #expect(v1?.consumerSequence == 5)
        #expect(v1?.pending == 3)
        let v2 = AckMetadata(ackSubject: "$JS.ACK._.ACCHASH.S.C.4.9.8.1700000000000000000.0.tok")
        #expect(v2?.stream == "S" && v2?.numDelivered == 4 && v2?.streamSequence == 9)
        #expect(AckMetadata(ackSubject: "_INBOX.abc") == nil)
    }
}
