import ConformanceKit
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM ask the run to stop: no new request goes out, the current case deletes the
/// pins it created, the run deletes any leftovers, and the process exits 128+signal. A second
/// signal exits at once (the journal then lets `--cleanup-only RUN_ID` finish the job).
final class SignalTrap {
    let stop = StopSignal()
    private let received = Received()
    private let sources: [any DispatchSourceSignal]

    init() {
        var sources: [any DispatchSourceSignal] = []
        let stop = self.stop
        let received = self.received
        for signo in [SIGINT, SIGTERM] {
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler {
                let first = received.value.withLock { value -> Bool in
                    defer { if value == nil { value = signo } }
                    return value == nil
                }
                if first {
                    Console.say(
                        "\nconformance: \(signo == SIGINT ? "SIGINT" : "SIGTERM") received: stopping after the current request and deleting the pins this run created (signal again to quit at once)"
                    )
                    stop.request()
                } else {
                    Console.say("conformance: second signal: quitting without clean-up")
                    exit(128 + signo)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// The signal that stopped the run, if one did.
    var receivedSignal: Int32? { received.value.withLock { $0 } }

    /// The first signal, shared with the handlers.
    private final class Received: Sendable {
        let value = Mutex<Int32?>(nil)
    }
}
