import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `anchorage conformance …` runs `anchorage-conformance …`, the suite's own executable (found
/// beside this one, then on `PATH`), in place of this process: the server does not link the
/// conformance kit, and the command line operators and CI already use keeps working.
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run the Pinning Services API conformance suite against a pinning service (anchorage-conformance --help)."
    )

    @Argument(parsing: .captureForPassthrough, help: "Arguments for anchorage-conformance.")
    var arguments: [String] = []

    func run() throws {
        let name = "anchorage-conformance"
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent(name).path
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(name)" }
        guard let binary = ([beside] + path).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationError("\(name) not found beside \(CommandLine.arguments[0]) or on PATH (swift build builds it)")
        }
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        execv(binary, argv)
        throw ValidationError("could not run \(binary): \(String(cString: strerror(errno)))")
    }
}
