import ArgumentParser
import FakeKubo
import Foundation
import Hummingbird
import Logging
import Seams

/// `fake-kubo --listen 127.0.0.1:5001 [--state FILE] [--seed N]`: a wire-faithful fake Kubo RPC
/// server for dev mode and tests. Prints its API address and peer ID, serves until SIGINT/SIGTERM.
@main
struct FakeKuboMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-kubo",
        abstract: "A fake Kubo (IPFS) node speaking Kubo's RPC API, with fault knobs (POST /fake/knobs)."
    )

    @Option(help: "host:port to listen on (port 0 picks a free port).")
    var listen: String = "127.0.0.1:5001"

    @Option(help: "JSON file the pin set is loaded from and saved to.")
    var state: String?

    @Option(help: "Seed for the peer identity and failure injection.")
    var seed: UInt64 = 1

    @Option(help: "Initial knobs as JSON (same shape as POST /fake/knobs).")
    var knobs: String?

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).")
    var logLevel: String = "info"

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var initialKnobs = FakeKuboKnobs()
        if let knobs {
            initialKnobs = try JSONDecoder().decode(FakeKuboKnobs.self, from: Data(knobs.utf8))
        }
        let pins = try state.map { try FakeKuboNode.loadState(file: $0) } ?? []
        var logger = Logger(label: "fake-kubo")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let node = FakeKuboNode(seed: seed, knobs: initialKnobs, pins: pins, stateFile: state)
        let server = FakeKuboServer(node: node, host: host, port: port, logger: logger)
        let peerID = node.peerID
        let listenHost = host
        let loadedPins = pins.count
        let stateFile = state
        try await server.runUntilSignalled { boundPort in
            let isV6 = listenHost.contains(":")
            let url = "http://\(isV6 ? "[\(listenHost)]" : listenHost):\(boundPort)"
            var lines = "fake-kubo API server listening on /\(isV6 ? "ip6" : "ip4")/\(listenHost)/tcp/\(boundPort) (\(url))\n"
            lines += "peer ID: \(peerID)\n"
            if let stateFile { lines += "state file: \(stateFile) (\(loadedPins) pins loaded)\n" }
            FileHandle.standardOutput.write(Data(lines.utf8))
        }
    }
}
