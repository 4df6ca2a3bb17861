import Hummingbird
import Seams
import Tokens

/// The request context: Hummingbird's core storage plus the authenticated caller.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthMiddleware` once the bearer token verified.
    public var claims: TokenClaims?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// The org the request acts for. Routes behind `AuthMiddleware` always have one.
    public var org: TypeID? { claims?.org }
}
