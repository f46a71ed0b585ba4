/// A hash that is the same in every process and on every run (Swift's `Hasher` is seeded per process), for
/// static pod UIDs and container spec hashes that must survive a daemon restart.
///
/// FNV-1a over 64 bits, twice with different offsets for 128 bits. Not cryptographic: it only tells
/// manifests apart, as the kubelet's MD5 of the object does.
enum StableHash {
    static func fnv1a64(_ bytes: some Sequence<UInt8>, offset: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = offset
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// 32 lowercase hex digits (the shape of the kubelet's static pod UIDs).
    static func hex128(_ bytes: [UInt8]) -> String {
        let first = fnv1a64(bytes)
        let second = fnv1a64(bytes, offset: 0x6c62_272e_07bb_0142)
        return hex(first) + hex(second)
    }

    /// 8 hex digits, the shape the kubelet shows for container hashes.
    static func hex32(_ bytes: [UInt8]) -> String {
        let value = fnv1a64(bytes)
        return String(String(UInt32(truncatingIfNeeded: value ^ (value >> 32)), radix: 16).leftPadded(to: 8))
    }

    private static func hex(_ value: UInt64) -> String {
        String(value, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
