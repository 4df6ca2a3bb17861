import Foundation
import Seams

extension JetStream {
    /// Pulls up to `batch` messages from a pull consumer.
    ///
    /// With `wait` zero it asks with `no_wait` and returns what is there now. Otherwise, if
    /// nothing is there, it waits up to `wait` for one message, then tops up without waiting:
    /// so it returns as soon as something arrives, and no pull request outlives the call
    /// (a message sent to a request nobody reads would sit unacked until the ack wait).
    public func fetch(stream: String, consumer: String, batch: Int, wait: Duration = .zero) async throws -> [JetStreamMessage] {
        guard batch > 0 else { return [] }
        var got = try await pull(stream: stream, consumer: consumer, batch: batch, expires: nil)
        if got.isEmpty, wait >= .milliseconds(1) {
            got = try await pull(stream: stream, consumer: consumer, batch: 1, expires: wait)
            if !got.isEmpty, batch > 1 {
                got += try await pull(stream: stream, consumer: consumer, batch: batch - 1, expires: nil)
            }
        }
        return got
    }

    /// One pull request on its own inbox. Ends on `batch` messages, a 404/408/409 status
    /// (no messages, request expired, consumer gone…), or the client-side deadline.
    func pull(stream: String, consumer: String, batch: Int, expires: Duration?) async throws -> [JetStreamMessage] {
        let inbox = client.newInbox()
        let sub = try await client.subscribe(inbox, capacity: batch + 8)
        do {
            let got = try await collect(sub, stream: stream, consumer: consumer, batch: batch, expires: expires)
            await sub.unsubscribe()
            return got
        } catch {
            await sub.unsubscribe()
            throw error
        }
    }

    private func collect(_ sub: NATSSubscription, stream: String, consumer: String, batch: Int, expires: Duration?) async throws -> [JetStreamMessage]
    {
        let request = PullRequest(batch: batch, expires: expires?.nanoseconds, noWait: expires == nil ? true : nil)
        try await client.publish(
            "\(apiPrefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)",
            Array(try JSONEncoder().encode(request)),
            replyTo: sub.subject
        )
        let deadline = (expires ?? .zero) + timeout
        return try await withThrowingTaskGroup(of: [JetStreamMessage]?.self) { group in
            group.addTask {
                var out: [JetStreamMessage] = []
                for await m in sub {  // ends (nil) when cancelled at the deadline: keep what came
                    switch m.status {
                    case nil:
                        out.append(JetStreamMessage(m))
                        if out.count >= batch { return out }
                    case 100:
                        continue  // heartbeat
                    case 404, 408:
                        return out  // no messages / request expired
                    case 409 where out.isEmpty && (m.headers?.statusDescription ?? "").contains("Consumer Deleted"):
                        throw JetStreamError(code: 409, errCode: JetStreamError.consumerNotFound, description: "consumer \(consumer) deleted")
                    case 503:
                        throw JetStreamError(
                            code: 404,
                            errCode: JetStreamError.consumerNotFound,
                            description: "no consumer \(consumer) on stream \(stream)"
                        )
                    default:
                        return out  // 409 batch/max-waiting limits, leadership change: end of this pull
                    }
                }
                return out
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                return nil
            }
            // The collector's result wins; when the deadline comes first, cancelling the
            // collector makes it return what it has.
            while let r = try await group.next() {
                group.cancelAll()
                if let msgs = r { return msgs }
            }
            return []
        }
    }

    /// Acknowledges a delivery. `.ack` and `.term` wait for the server to confirm (double ack),
    /// the others are confirmed by a flush.
    public func ack(_ message: JetStreamMessage, _ kind: AckKind = .ack) async throws {
        guard let subject = message.ackSubject else { throw NATSError.invalidSubject("message has no ack subject") }
        try await ack(subject: subject, kind)
    }

    public func ack(subject: String, _ kind: AckKind) async throws {
        switch kind {
        case .ack, .term:
            _ = try await client.request(subject, kind.body, timeout: timeout)
        case .nak, .inProgress:
            try await client.publish(subject, kind.body)
            try await client.flush(timeout: timeout)
        }
    }
}
