import NIOCore
import Seams

/// The pipeline end of one connection. During the handshake it answers INFO with CONNECT+PING
/// and completes `handshake` on the first PONG (or fails it on -ERR / close); afterwards it
/// hands every operation to the client. Server PINGs are answered here, on the event loop.
final class NATSChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser: NATSProtocolParser
    private var cumulation: ByteBuffer?
    private let connectFrame: [UInt8]
    private let handshake: EventLoopPromise<ServerInfo>
    private var info: ServerInfo?
    private var handshakeDone = false
    private let sink: @Sendable (ServerOp, ObjectIdentifier) -> Void

    init(
        parser: NATSProtocolParser,
        connectFrame: [UInt8],
        handshake: EventLoopPromise<ServerInfo>,
        sink: @escaping @Sendable (ServerOp, ObjectIdentifier) -> Void
    ) {
        self.parser = parser
        self.connectFrame = connectFrame
        self.handshake = handshake
        self.sink = sink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var buf: ByteBuffer
        if var c = cumulation {
            cumulation = nil
            c.writeBuffer(&incoming)
            buf = c
        } else {
            buf = incoming
        }
        do {
            while let op = try parser.next(&buf) { handle(op, context: context) }
        } catch {
            failHandshake(error)
            context.close(promise: nil)
            return
        }
        if buf.readableBytes > 0 {
            if buf.readerIndex > 64 << 10 { buf.discardReadBytes() }
            cumulation = buf
        }
    }

    private func handle(_ op: ServerOp, context: ChannelHandlerContext) {
        switch op {
        case .ping:
            var b = context.channel.allocator.buffer(capacity: 6)
            ClientFrame.pong(into: &b)
            context.writeAndFlush(wrapOutboundOut(b), promise: nil)
        case .info(let i) where !handshakeDone && info == nil:
            info = i
            parser.maxPayload = max(parser.maxPayload, i.maxPayload + 4096)
            var b = context.channel.allocator.buffer(capacity: connectFrame.count)
            b.writeBytes(connectFrame)
            context.writeAndFlush(wrapOutboundOut(b), promise: nil)
        case .pong where !handshakeDone:
            guard let info else { return failHandshake(NATSError.protocolViolation("PONG before INFO")) }
            handshakeDone = true
            handshake.succeed(info)
        case .err(let text) where !handshakeDone:
            failHandshake(NATSError.serverError(text))
            context.close(promise: nil)
        case .ok where !handshakeDone:
            break
        default:
            if handshakeDone { sink(op, ObjectIdentifier(context.channel)) }
        }
    }

    private func failHandshake(_ error: any Error) {
        guard !handshakeDone else { return }
        handshakeDone = true
        handshake.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failHandshake(BusError.unavailable("connection closed during handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failHandshake(error)
        context.close(promise: nil)
    }
}
