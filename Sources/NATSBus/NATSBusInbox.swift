import NATS
import Seams

/// A `BusInbox` over a NATS subscription whose bounded buffer drops the oldest message.
struct NATSBusInbox: BusInbox {
    let subscription: NATSSubscription

    func drain() async -> [BusMessage] {
        subscription.drain().map { BusMessage(subject: $0.subject, payload: $0.payload) }
    }

    func dropped() async -> Int { subscription.dropped }

    func close() async { await subscription.unsubscribe() }
}
