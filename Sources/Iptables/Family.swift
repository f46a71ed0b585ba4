/// An nf_tables table family, spelled as `nft` spells it.
public enum Family: String, Sendable, CaseIterable, Hashable {
    case ip
    case ip6
    case inet
}
