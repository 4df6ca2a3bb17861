import ArgumentParser

@main
struct Anchorage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchorage",
        abstract: "A multi-tenant IPFS pinning service (IPFS Pinning Services API).",
        subcommands: [Serve.self, Migrate.self, Admin.self, Conformance.self]
    )
}
