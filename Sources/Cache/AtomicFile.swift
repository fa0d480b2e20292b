import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file writes that readers never see half done: the bytes go to a temporary file in
/// the destination's folder, are flushed with `fsync`, and the file is then renamed (or, for
/// `writeNew`, hard-linked) into place; the folder is synced too. On failure the temporary
/// file is removed and the destination is untouched.
public enum AtomicFile {
    /// Writes `data` to `url`, replacing any file there. `permissions` are the new file's mode
    /// bits (e.g. `0o644`, `0o444`).
    public static func write(_ data: Data, to url: URL, permissions: Int = 0o644) throws {
        let temporary = try writeTemporary(data, besides: url, permissions: permissions)
        if rename(temporary, url.path) != 0 {
            let reason = errnoDescription()
            _ = unlink(temporary)
            throw CacheError.writeFailed(path: url.path, reason: "rename: \(reason)")
        }
        syncPath(url.deletingLastPathComponent().path)
    }

    /// Like `write`, but throws `CacheError.alreadyExists` instead of replacing a file that is
    /// already at `url` — also when another process creates it meanwhile (the final step is a
    /// `link`, which never replaces).
    public static func writeNew(_ data: Data, to url: URL, permissions: Int = 0o644) throws {
        if (try FileStatus.of(url.path)) != nil { throw CacheError.alreadyExists(path: url.path) }
        let temporary = try writeTemporary(data, besides: url, permissions: permissions)
        defer { _ = unlink(temporary) }
        if link(temporary, url.path) != 0 {
            let code = errno
            if code == EEXIST { throw CacheError.alreadyExists(path: url.path) }
            throw CacheError.writeFailed(path: url.path, reason: "link: \(errnoDescription(code))")
        }
        syncPath(url.deletingLastPathComponent().path)
    }

    /// Creates `.<name>.<random>.tmp` next to `url`, writes and syncs `data`; returns its path.
    private static func writeTemporary(_ data: Data, besides url: URL, permissions: Int) throws -> String {
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + "." + UUID().uuidString + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions & 0o7777))
        if fd < 0 {
            throw CacheError.writeFailed(path: url.path, reason: "cannot create temporary file in \(folder): \(errnoDescription())")
        }
        var failure: String?
        data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let written = posixWrite(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = "write: \(errnoDescription())"
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(errnoDescription())" }
        // The mode given to open() is reduced by the umask; set it exactly.
        if failure == nil, fchmod(fd, mode_t(permissions & 0o7777)) != 0 { failure = "chmod: \(errnoDescription())" }
        if close(fd) != 0, failure == nil { failure = "close: \(errnoDescription())" }
        if let failure {
            _ = unlink(temporary)
            throw CacheError.writeFailed(path: url.path, reason: failure)
        }
        return temporary
    }
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ pointer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, pointer, count)
}
