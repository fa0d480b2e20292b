import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 digests as 64 lowercase hexadecimal characters — the form of every cache key and
/// every file hash in a manifest.
///
///     ContentHash.sha256("abc")
///     // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
public enum ContentHash {
    /// Bytes read per `read` call when hashing a file.
    public static let chunkSize = 1 << 20

    /// SHA-256 of `data`.
    public static func sha256(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    /// SHA-256 of the UTF-8 bytes of `string`.
    public static func sha256(_ string: String) -> String {
        hex(SHA256.hash(data: Data(string.utf8)))
    }

    /// SHA-256 of a file's contents, read in `chunkSize` pieces so large files never sit in
    /// memory. Throws `CacheError.unreadable` naming the path.
    public static func sha256(fileAt url: URL) throws -> String {
        try sha256AndSize(fileAt: url.path).hash
    }

    /// Whether `string` has the form of a digest: 64 characters from `0-9a-f`.
    public static func isDigest(_ string: String) -> Bool {
        let utf8 = string.utf8
        return utf8.count == 64 && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Hash and number of bytes read.
    static func sha256AndSize(fileAt path: String) throws -> (hash: String, size: Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw CacheError.unreadable(path: path, reason: errnoDescription())
        }
        defer { _ = close(fd) }
        var hasher = SHA256()
        var total: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, chunkSize)
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw CacheError.unreadable(path: path, reason: errnoDescription(code))
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += Int64(count)
        }
        return (hex(hasher.finalize()), total)
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
