import Foundation

/// A pin the runner created, and with which tenant's token.
public struct TrackedPin: Hashable, Sendable {
    public enum Tenant: String, Sendable { case tenantA, tenantB }
    public var requestID: String
    public var tenant: Tenant

    public init(requestID: String, tenant: Tenant) {
        self.requestID = requestID
        self.tenant = tenant
    }
}

/// Every pin a run created and has not deleted yet, mirrored line by line into a journal file
/// (`+ tenantA <requestid>` / `- tenantA <requestid>`) so that `--cleanup-only RUN_ID` can finish
/// the job of a run that was killed outright.
public actor PinLedger {
    public let journal: URL?
    private var live: [TrackedPin] = []
    private var handle: FileHandle?

    public init(journal: URL? = nil) {
        self.journal = journal
    }

    /// The pins created and not deleted, oldest first.
    public var remaining: [TrackedPin] { live }

    public func record(_ pin: TrackedPin) {
        guard !live.contains(pin) else { return }
        live.append(pin)
        append("+ \(pin.tenant.rawValue) \(pin.requestID)\n")
    }

    public func forget(_ pin: TrackedPin) {
        guard let index = live.firstIndex(of: pin) else { return }
        live.remove(at: index)
        append("- \(pin.tenant.rawValue) \(pin.requestID)\n")
    }

    /// Closes the journal and removes it when nothing is left to clean up.
    public func close() {
        try? handle?.close()
        handle = nil
        if live.isEmpty, let journal { try? FileManager.default.removeItem(at: journal) }
    }

    private func append(_ line: String) {
        guard let journal else { return }
        if handle == nil {
            try? FileManager.default.createDirectory(at: journal.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: journal.path) {
                FileManager.default.createFile(atPath: journal.path, contents: nil)
            }
            handle = try? FileHandle(forWritingTo: journal)
            _ = try? handle?.seekToEnd()
        }
        // Written through at once: the journal must survive a SIGKILL right after.
        try? handle?.write(contentsOf: Data(line.utf8))
    }

    /// The pins a journal says are still there.
    public static func pending(inJournal url: URL) -> [TrackedPin] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var pins: [TrackedPin] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3, let tenant = TrackedPin.Tenant(rawValue: parts[1]) else { continue }
            let pin = TrackedPin(requestID: parts[2], tenant: tenant)
            if parts[0] == "+" {
                if !pins.contains(pin) { pins.append(pin) }
            } else {
                pins.removeAll { $0 == pin }
            }
        }
        return pins
    }
}
