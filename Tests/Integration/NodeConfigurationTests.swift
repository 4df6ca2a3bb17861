import AnchorageNode
import Configuration
import Foundation
import Testing

/// The one configuration type: production's defaults, overrides by key name (the simulator's
/// `--set`), and the differences it prints.
@Suite struct NodeConfigurationTests {
    @Test func overridesByKeyNameAndTheirDifferences() throws {
        let c = try NodeConfiguration(overrides: ["kubo.maxConcurrentPins": "8", "cluster.sweepInterval": "45s", "cluster.autoBalance": "true"])
        #expect(c.worker.maxConcurrentPins == 8)
        #expect(c.cluster.sweepSeconds == 45)
        #expect(c.cluster.autoBalance)
        let diffs = c.differencesFromProduction().map { "\($0.key)=\($0.value)/\($0.production)" }
        #expect(diffs == ["kubo.maxConcurrentPins=8/16", "cluster.sweepInterval=45s/30s", "cluster.autoBalance=true/false"])
        #expect(try NodeConfiguration(overrides: [:]).differencesFromProduction().isEmpty)
    }

    @Test func aMistypedOrOutOfRangeKeyIsRefused() {
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(overrides: ["kubo.maxConcurentPins": "8"]) }
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(overrides: ["kubo.maxConcurrentPins": "0"]) }
    }

    /// The NATS client has no TLS: a `tls://` URL used to be accepted and connect in plain text.
    @Test func aTLSNATSURLIsRefusedNotSilentlyPlain() throws {
        func reader(_ url: String) -> ConfigReader {
            ConfigReader(
                provider: InMemoryProvider(name: "t", values: [AbsoluteConfigKey(["nats", "url"]): ConfigValue(.string(url), isSecret: false)])
            )
        }
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(reader: reader("tls://nats.example:4222")) }
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(reader: reader("nats://a:4222,tls://b:4222")) }
        #expect(try NodeConfiguration(reader: reader("nats://a:4222,nats://b:4222")).nats.clientURLs.count == 2)
    }

    /// A secret given on a command line is visible in `ps`; every secret key has a `…File` form.
    @Test func secretsCanComeFromFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "postgres://anchorage_api:pw@db:5432/anchorage\n".write(toFile: path, atomically: true, encoding: .utf8)
        func reader(_ key: [String]) -> ConfigReader {
            ConfigReader(provider: InMemoryProvider(name: "t", values: [AbsoluteConfigKey(key): ConfigValue(.string(path), isSecret: false)]))
        }
        #expect(try NodeConfiguration(reader: reader(["db", "urlFile"])).databaseURL == "postgres://anchorage_api:pw@db:5432/anchorage")
        #expect(try NodeConfiguration(reader: reader(["nats", "tokenFile"])).nats.token == "postgres://anchorage_api:pw@db:5432/anchorage")
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(reader: reader(["db", "opsUrlFile"])) }
    }

    /// Delegates taken from Kubo publish its public addresses when it has any: private ones only
    /// told tenants about the operator's network.
    @Test func delegatesPreferPublicAddresses() {
        let loopback = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWPeer"
        let lan = "/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWPeer"
        let wan = "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWPeer"
        #expect(DelegateAddresses.choose([loopback, lan, wan, "/ip4/1.2.3.4/tcp/4001"]) == [wan])
        #expect(DelegateAddresses.choose([loopback, lan]) == [lan], "a LAN deployment still gets its addresses")
        #expect(DelegateAddresses.choose([loopback]) == [loopback])
    }
}
