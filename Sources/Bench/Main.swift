import Foundation
import LocalPostgres
import Logging
import Live
@main struct Main {
    static func main() async throws {
        var logger = Logger(label: "dbg")
        logger.logLevel = .debug
        FileHandle.standardError.write(Data((String(describing: ["start"]) + "\n").utf8))
        let pg = try await LocalPostgres.start(logger: logger)
        FileHandle.standardError.write(Data((String(describing: ["started", pg.port]) + "\n").utf8))
        _ = try await pg.createDatabase("tmpl", clock: SystemWallClock(), logger: logger)
        FileHandle.standardError.write(Data((String(describing: ["created"]) + "\n").utf8))
        _ = try await pg.createDatabase("t1", template: "tmpl", clock: SystemWallClock(), logger: logger)
        FileHandle.standardError.write(Data((String(describing: ["cloned"]) + "\n").utf8))
        pg.stop()
        FileHandle.standardError.write(Data((String(describing: ["stopped"]) + "\n").utf8))
    }
}
