import Seams

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The system wall clock plus an offset read from a file: a whole number of seconds (`30`,
/// `-5`), re-read at most once a second; a missing or unreadable file means 0. For fault tests
/// only (`ANCHORAGE_FAULT_CLOCK_OFFSET_FILE`): a test steps one process's wall clock, as an NTP
/// step would, while its timers and monotonic clock run on. (libfaketime cannot do it: under
/// its `LD_PRELOAD` Swift's `CommandLine.arguments` comes back empty.)
public final class SteppedWallClock: WallClock, @unchecked Sendable {
    // @unchecked: `offset` and `readAt` are only touched under `lock`.
    let base = SystemWallClock()
    public let offsetFile: String
    private let lock = Lock()
    private var offset: Int64 = 0
    private var readAt: Int64?

    public init(offsetFile: String) { self.offsetFile = offsetFile }

    public func now() -> Timestamp {
        let t = base.now().microseconds
        let offset = lock.withLock {
            if readAt.map({ t - $0 >= 1_000_000 || t < $0 }) ?? true {
                readAt = t
                self.offset = Self.offsetSeconds(in: offsetFile) * 1_000_000
            }
            return self.offset
        }
        return Timestamp(microsecondsSinceEpoch: t + offset)
    }

    static func offsetSeconds(in path: String) -> Int64 {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 32) }
        guard n > 0 else { return 0 }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters()
        return Int64(text) ?? 0
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "+" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
