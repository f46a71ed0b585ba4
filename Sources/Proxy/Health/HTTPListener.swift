import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 listener for the proxy's health endpoints: `/healthz` on `--healthz-bind-address`
/// (kube-proxy's 10256) and one per health-check node port. It answers GETs from a closure and closes each
/// connection after one response; nothing else. The proxy keeps its own listener (rather than a route on the
/// daemon's status server) because kube-proxy's port and per-Service ports are opened and closed at run time
/// and load balancers probe them on the node's addresses.
final class HTTPListener: Sendable {
    typealias Handler = @Sendable (_ path: String) -> (status: Int, body: String)

    private let channel: any Channel
    /// The port actually bound (port 0 picks one).
    let port: Int

    /// Binds `host:port` and serves `handler`.
    /// - Throws: NIO's bind error (address in use, permission).
    init(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, handler: @escaping Handler) async throws {
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Responder(handler: handler))
                }
            }
            .bind(host: host, port: port)
            .get()
        self.port = channel.localAddress?.port ?? port
    }

    func close() async {
        try? await channel.close()
    }

    private final class Responder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let handler: Handler
        var path = "/"

        init(handler: @escaping Handler) { self.handler = handler }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "/")
            case .body:
                break
            case .end:
                let (status, body) = handler(path)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: body.hasPrefix("{") ? "application/json" : "text/plain; charset=utf-8")
                headers.add(name: "Content-Length", value: "\(body.utf8.count)")
                headers.add(name: "Connection", value: "close")
                headers.add(name: "X-Content-Type-Options", value: "nosniff")
                let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }
}
