import AnchorageNode
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
}
