import NIOCore

enum ByteBufferShim {
    static func make(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }
}
