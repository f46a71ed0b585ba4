/// When to pull an image, as a pod's `imagePullPolicy` says.
public enum ImagePullPolicy: String, Sendable, Hashable, CaseIterable {
    case always = "Always"
    case ifNotPresent = "IfNotPresent"
    case never = "Never"

    /// Kubernetes' default for a reference: `Always` for `:latest` or no tag, otherwise `IfNotPresent`
    /// (a reference pinned by digest is `IfNotPresent`).
    public static func `default`(for reference: ImageReference) -> ImagePullPolicy {
        if reference.digest != nil { return .ifNotPresent }
        return reference.tag == nil || reference.tag == "latest" ? .always : .ifNotPresent
    }
}

/// An image reference as containerd names it, e.g. `docker.io/library/busybox:1.36` or `local/busybox:latest`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The repository (`docker.io/library/busybox`; short names are normalized like Docker does).
    public var repository: String
    public var tag: String?
    public var digest: String?

    /// Parses and normalizes `text` (`busybox` becomes `docker.io/library/busybox:latest`; `local/x` keeps its
    /// first component because containerd stores imported images under the name they were given).
    /// - Throws: ``ContainerRuntimeError`` `.invalidImageName` naming the reference and what is wrong with it.
    public init(parsing text: String) throws {
        func invalid(_ why: String) -> ContainerRuntimeError { .invalidImageName(text, why) }
        guard !text.isEmpty else { throw invalid("it is empty") }
        guard text.count <= 255 else { throw invalid("it is longer than 255 characters") }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digest = rest[rest.index(after: at)...]
            let parts = digest.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0] == "sha256", parts[1].count == 64, parts[1].allSatisfy(\.isHexDigit)
            else { throw invalid("the digest must be sha256:<64 hex digits>") }
            self.digest = String(digest)
            rest = rest[..<at]
        } else {
            self.digest = nil
        }
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let tag = rest[rest.index(after: colon)...]
            guard !tag.isEmpty, tag.count <= 128, tag.first != "." && tag.first != "-",
                tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
            else { throw invalid("the tag \"\(tag)\" may hold only letters, digits, '_', '.', '-' (at most 128)") }
            self.tag = String(tag)
            rest = rest[..<colon]
        } else {
            self.tag = nil
        }
        let components = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard !components.isEmpty, components.allSatisfy({ !$0.isEmpty }) else { throw invalid("a path component is empty") }
        for (index, component) in components.enumerated() {
            let isRegistry = index == 0 && components.count > 1 && (component.contains(".") || component.contains(":") || component == "localhost")
            let allowed: (Character) -> Bool =
                isRegistry
                ? { $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) }
                : { $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) }
            guard component.allSatisfy(allowed) else {
                throw invalid("\"\(component)\" may hold only lowercase letters, digits, '.', '_', '-'")
            }
        }
        var repository = components.joined(separator: "/")
        if components.count == 1 { repository = "docker.io/library/\(repository)" }
        self.repository = repository
    }

    /// The name containerd stores: repository plus tag (default `latest` unless pinned by digest), plus digest.
    public var description: String {
        var text = repository
        if let tag { text += ":\(tag)" } else if digest == nil { text += ":latest" }
        if let digest { text += "@\(digest)" }
        return text
    }
}

/// An image present in containerd.
public struct ImageStatus: Sendable, Hashable {
    /// The name it is stored under.
    public var reference: String
    /// The image's digest (`sha256:...` of its index or manifest), what Kubernetes reports as imageID.
    public var digest: String

    public init(reference: String, digest: String) {
        self.reference = reference
        self.digest = digest
    }

    /// `<repository>@<digest>`, the form pod status shows in `imageID`.
    public var imageID: String {
        let repository = reference.split(separator: "@").first.map { part -> String in
            let text = String(part)
            if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") { return String(text[..<colon]) }
            return text
        } ?? reference
        return "\(repository)@\(digest)"
    }
}
