import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Small POSIX wrappers shared by the store, the hasher and AtomicFile.

/// The text of an errno value, e.g. "No such file or directory (errno 2)".
func errnoDescription(_ code: Int32 = errno) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}

/// What `lstat` says about a path.
struct FileStatus: Equatable {
    enum Kind { case regular, directory, symlink, other }
    var kind: Kind
    var size: Int64
    var mtimeNanoseconds: Int64
    var inode: UInt64
    var device: UInt64
    var mode: UInt32

    /// `lstat` of `path`; nil when nothing is there, throws on any other failure.
    static func of(_ path: String) throws -> FileStatus? {
        var st = stat()
        if lstat(path, &st) != 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return nil }
            throw CacheError.unreadable(path: path, reason: errnoDescription(code))
        }
        let kind: Kind
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        #if canImport(Darwin)
        let mtime = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        return FileStatus(kind: kind, size: Int64(st.st_size), mtimeNanoseconds: mtime,
                          inode: UInt64(st.st_ino), device: UInt64(st.st_dev),
                          mode: UInt32(st.st_mode) & 0o7777)
    }
}

/// Names in a directory (without "." and ".."), sorted by Unicode scalars.
func directoryNames(_ path: String) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: path)
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    } catch {
        throw CacheError.unreadable(path: path, reason: "cannot list directory: \(error.localizedDescription)")
    }
}

/// Creates a directory and its parents (mode 0755); succeeds when it already exists.
func makeDirectory(_ url: URL) throws {
    do {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
    } catch {
        throw CacheError.writeFailed(path: url.path, reason: "cannot create directory: \(error.localizedDescription)")
    }
}

func setMode(_ path: String, _ mode: mode_t) throws {
    if chmod(path, mode) != 0 {
        throw CacheError.writeFailed(path: path, reason: "chmod \(String(mode, radix: 8)): \(errnoDescription())")
    }
}

/// `fsync` of a file or directory (opened read-only, which is enough on Linux and macOS).
func syncPath(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    _ = close(fd)
}

/// Removes a file tree even when its directories are read-only: write permission is restored
/// on every directory (top-down) before deleting. Missing paths are not an error.
func removeTree(_ path: String) throws {
    guard let status = try FileStatus.of(path) else { return }
    if status.kind == .directory {
        try restoreWritePermission(path)
    }
    do {
        try FileManager.default.removeItem(atPath: path)
    } catch {
        if (try? FileStatus.of(path)) == nil { return }
        throw CacheError.writeFailed(path: path, reason: "cannot remove: \(error.localizedDescription)")
    }
}

private func restoreWritePermission(_ directory: String) throws {
    try setMode(directory, 0o755)
    for name in try directoryNames(directory) {
        let child = directory + "/" + name
        if let status = try FileStatus.of(child) {
            if status.kind == .directory {
                try restoreWritePermission(child)
            } else if status.kind == .regular {
                try setMode(child, 0o644)
            }
        }
    }
}

/// Total bytes of the regular files under `path` (the file itself when it is one).
func treeSize(_ path: String) -> Int64 {
    guard let status = try? FileStatus.of(path) else { return 0 }
    switch status.kind {
    case .regular: return status.size
    case .directory:
        let names = (try? directoryNames(path)) ?? []
        return names.reduce(0) { $0 + treeSize(path + "/" + $1) }
    default: return 0
    }
}

// MARK: - flock

/// An advisory `flock` lock held through its own open file description, so it excludes other
/// threads of the same process as well as other processes. Released by `unlock()` or deinit.
final class FileLock {
    enum Mode { case shared, exclusive }

    let path: String
    private var fd: Int32

    /// Opens (creating if needed) `path` and blocks until the lock is granted.
    init(path: String, mode: Mode) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw CacheError.lockFailed(path: path, reason: "open: \(errnoDescription())")
        }
        let operation = mode == .shared ? LOCK_SH : LOCK_EX
        while flock(fd, operation) != 0 {
            let code = errno
            if code == EINTR { continue }
            _ = close(fd)
            fd = -1
            throw CacheError.lockFailed(path: path, reason: "flock: \(errnoDescription(code))")
        }
    }

    func unlock() {
        if fd >= 0 {
            _ = close(fd)
            fd = -1
        }
    }

    deinit { unlock() }

    /// Whether some open file description holds a lock on `path` that excludes an exclusive
    /// one (probed with `LOCK_EX | LOCK_NB` on a fresh descriptor). False when there is no file.
    static func isHeld(path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { _ = close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }
}
