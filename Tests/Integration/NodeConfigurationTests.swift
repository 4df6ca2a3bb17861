import AnchorageNode
import Configuration
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
}
