import ArgumentParser

@main
struct Anchorage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchorage",
        abstract: "A multi-tenant IPFS pinning service (IPFS Pinning Services API).",
        version: AnchorageVersion.current,
        subcommands: [Serve.self, Migrate.self, Admin.self, Conformance.self]
    )
}

/// The release, reported in heartbeats and `--version` (bumped at release time).
enum AnchorageVersion {
    static let current = "0.2.0-dev"
}
