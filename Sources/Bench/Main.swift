import ArgumentParser

@main
struct AnchorageBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchorage-bench",
        abstract: "Benchmarks that print tables (never timed assertions in tests).",
        subcommands: [APIBench.self, TenancyBench.self]
    )
}
